using System.Security.Cryptography;
using System.Text.Json;
using Broker.Core.Signing;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Core.Tests.Signing;

public sealed class JwksWriterTests
{
    [Fact]
    public void Published_keys_are_written_with_their_members_and_read_back_by_identitymodel()
    {
        var key = SigningKey.Generate(DateTimeOffset.UnixEpoch);

        var json = JwksWriter.Write([key.PublicJwk]);

        using var document = JsonDocument.Parse(json);
        var written = Assert.Single(document.RootElement.GetProperty("keys").EnumerateArray());
        var names = written.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["alg", "crv", "kid", "kty", "use", "x", "y"], names);
        var read = Assert.Single(new JsonWebKeySet(System.Text.Encoding.UTF8.GetString(json)).Keys);
        Assert.Equal(key.KeyId, read.KeyId);
        Assert.Equal(key.PublicJwk.X, read.X);
        Assert.Equal(key.KeyId, Base64UrlEncoder.Encode(read.ComputeJwkThumbprint()));
    }

    [Fact]
    public void A_key_with_private_parts_is_never_written()
    {
        var secret = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)));

        Assert.Throws<InvalidOperationException>(() => JwksWriter.Write([secret]));
    }
}
