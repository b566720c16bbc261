using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Server.Hosting;

/// <summary>
/// --dev: writes a resource-server token (signed with the dev operator key, as dev operator
/// tokens are) to <c>&lt;dev-dir&gt;/resource-server.token</c>, so the SDK, the sample resource
/// server and <c>brokerctl introspect --dev</c> authenticate out of the box. Rewritten at every
/// start; production resource servers get theirs from the IdP.
/// </summary>
internal static class DevResourceServerToken
{
    public const string FileName = "resource-server.token";
    public const string Subject = "dev-resource-server";

    /// <summary>A working day: dev restarts write a fresh one.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(24);

    public static string Write(BrokerOptions broker, ResourceServerOptions options)
    {
        var key = Core.Signing.SigningKey.FromPemFile(broker.Operators.DevSigningKeyFile, DateTimeOffset.MinValue);
        var now = DateTime.UtcNow;
        var token = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = broker.Operators.DevIssuer,
            Audience = options.Audience,
            IssuedAt = now,
            NotBefore = now,
            Expires = now + Lifetime,
            TokenType = "JWT",
            SigningCredentials = key.Credentials,
            Claims = new Dictionary<string, object>
            {
                ["sub"] = Subject,
                [options.RolesClaim] = new[] { options.Role },
            },
        });
        var path = Path.Combine(Path.GetFullPath(broker.DevDirectory), FileName);
        File.WriteAllText(path, token);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        return path;
    }
}
