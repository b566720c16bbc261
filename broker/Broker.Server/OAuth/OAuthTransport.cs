using Broker.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Broker.Server.OAuth;

/// <summary>
/// OAuth endpoints carry proofs and tokens, so outside --dev they answer only over TLS
/// (RFC 6749 section 1.6). A production issuer is https:// (BRK1001), and then a request on a
/// plain-HTTP listener (the health or metrics port) is refused rather than served. The one
/// exception start-up validation allows is an http:// issuer on loopback.
/// </summary>
internal sealed class OAuthTransport(IOptions<BrokerOptions> options)
{
    private readonly bool _requireTls = !options.Value.Dev
        && Uri.TryCreate(options.Value.Issuer, UriKind.Absolute, out var issuer)
        && issuer.Scheme == Uri.UriSchemeHttps;

    public void EnsureSecure(HttpContext context)
    {
        if (_requireTls && !context.Request.IsHttps)
        {
            throw new OAuthRequestException(OAuthProtocol.InvalidRequest, OAuthReasons.TlsRequired, "OAuth endpoints answer only over HTTPS.");
        }
    }
}
