using System.Net.Http.Headers;

namespace Broker.Testing;

/// <summary>
/// Authenticates a test's calls to <c>RevocationService</c> as a resource server: adds
/// <c>authorization: Bearer</c> with the token <paramref name="token"/> supplies, unless the call
/// already carries one (a test checking what an unauthenticated or wrong caller gets).
/// </summary>
public sealed class ResourceServerTokenHandler(Func<string> token, HttpMessageHandler inner) : DelegatingHandler(inner)
{
    public const string Path = "/broker.v1.RevocationService/";

    /// <summary>The audience and role the broker expects of resource-server tokens by default.</summary>
    public const string Audience = "broker-resource-servers";
    public const string Role = "resource-server";

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.RequestUri?.AbsolutePath.StartsWith(Path, StringComparison.Ordinal) == true && request.Headers.Authorization is null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token());
        }

        return base.SendAsync(request, cancellationToken);
    }

    /// <summary>The token a --dev broker wrote into its dev folder.</summary>
    public static Func<string> FromDevDirectory(string devDirectory) =>
        () => File.ReadAllText(System.IO.Path.Combine(devDirectory, "resource-server.token")).Trim();
}
