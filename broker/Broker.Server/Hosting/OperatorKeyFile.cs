using System.Text.Json;
using Broker.Jose;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Server.Hosting;

/// <summary>
/// The operator keys a small installation trusts instead of an IdP (<c>Broker:Operators:KeyFile</c>):
/// a JWKS of public keys only, each ES256 (EC P-256) or RS256 (RSA of 2048 bits or more) with a
/// <c>kid</c> of its own. A private member anywhere refuses the file (BRK1165): the broker never
/// needs the half that mints operator tokens, and a file that holds it should not sit beside the
/// node. Shape rules are <see cref="PublicJwk"/>'s, the same as for keys tokens are bound to.
/// </summary>
public static class OperatorKeyFile
{
    /// <summary>More keys than any rotation needs; the file is read whole at start.</summary>
    public const int MaxKeys = 32;

    /// <summary>A JWKS of <see cref="MaxKeys"/> RSA-4096 keys is well under this.</summary>
    public const int MaxBytes = 256 * 1024;

    /// <summary>The algorithms operator tokens signed with these keys may use.</summary>
    public static readonly IReadOnlyList<string> Algorithms = [SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.RsaSha256];

    /// <summary>The keys of <paramref name="path"/>, or start-up problems (BRK1164-1166) naming the setting and the key.</summary>
    public static IReadOnlyList<JsonWebKey> Read(string path, out List<string> problems)
    {
        problems = [];
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                problems.Add($"BRK1164: Broker:Operators:KeyFile '{path}' does not exist.");
                return [];
            }

            if (info.Length > MaxBytes)
            {
                problems.Add($"BRK1164: Broker:Operators:KeyFile '{path}' is larger than {MaxBytes} bytes; it is not a JWKS of operator keys.");
                return [];
            }

            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            problems.Add($"BRK1164: Broker:Operators:KeyFile '{path}' cannot be read: {ex.Message}");
            return [];
        }

        JsonElement keys;
        try
        {
            using var document = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 8 });
            if (document.RootElement.ValueKind != JsonValueKind.Object || !document.RootElement.TryGetProperty("keys", out var found) || found.ValueKind != JsonValueKind.Array)
            {
                problems.Add($"BRK1164: Broker:Operators:KeyFile '{path}' is not a JWKS: no \"keys\" array.");
                return [];
            }

            keys = found.Clone();
        }
        catch (JsonException)
        {
            problems.Add($"BRK1164: Broker:Operators:KeyFile '{path}' is not JSON (a JWKS, {{\"keys\":[...]}}, is expected).");
            return [];
        }

        var count = keys.GetArrayLength();
        if (count is 0 or > MaxKeys)
        {
            problems.Add($"BRK1166: Broker:Operators:KeyFile '{path}' must list 1 to {MaxKeys} keys; it lists {count}.");
            return [];
        }

        var result = new List<JsonWebKey>();
        var kids = new HashSet<string>(StringComparer.Ordinal);
        var index = 0;
        foreach (var element in keys.EnumerateArray())
        {
            var where = $"Broker:Operators:KeyFile '{path}' key {index++}";
            if (Problem(element, out var jwk, out var id) is { } problem)
            {
                problems.Add($"{id}: {where} {problem}.");
                continue;
            }

            if (!kids.Add(jwk!.Kid))
            {
                problems.Add($"BRK1166: {where} repeats kid '{jwk.Kid}': each key needs its own kid.");
                continue;
            }

            result.Add(jwk);
        }

        return problems.Count == 0 ? result : [];
    }

    /// <summary>The keys of <paramref name="path"/>; refuses to start on any problem.</summary>
    public static IReadOnlyList<JsonWebKey> Load(string path)
    {
        var keys = Read(path, out var problems);
        return problems.Count == 0 ? keys : throw new BrokerStartupException(problems);
    }

    /// <summary>What is wrong with one key, and its id: BRK1165 for private material, else BRK1166.</summary>
    private static string? Problem(JsonElement element, out JsonWebKey? jwk, out string id)
    {
        jwk = null;
        id = "BRK1166";
        if (element.ValueKind != JsonValueKind.Object)
        {
            return "is not a JSON object";
        }

        var json = element.GetRawText();
        JsonWebKey parsed;
        try
        {
            parsed = new JsonWebKey(json);
        }
        catch (ArgumentException)
        {
            return "is not a JSON Web Key";
        }

        var member = PrivateMember(element);
        if (member is not null || parsed.HasPrivateKey)
        {
            id = "BRK1165";
            return $"holds private key material ('{member ?? "d"}'): the key file lists public keys only; the private key stays with whoever mints operator tokens";
        }

        if (PublicJwk.TryRead(json, out var shape) is null)
        {
            return shape;
        }

        if (string.IsNullOrEmpty(parsed.Kid) || parsed.Kid.Length > 128 || parsed.Kid.Any(char.IsControl))
        {
            return "needs a kid of 1 to 128 printable characters";
        }

        var algorithm = parsed.Kty == "EC" ? SecurityAlgorithms.EcdsaSha256 : SecurityAlgorithms.RsaSha256;
        if (parsed.Kty == "EC" && parsed.Crv != "P-256")
        {
            return "must be EC P-256 (ES256) or RSA of 2048 bits or more (RS256)";
        }

        if (!string.IsNullOrEmpty(parsed.Alg) && parsed.Alg != algorithm)
        {
            return $"names alg '{parsed.Alg}'; a {parsed.Kty} operator key signs {algorithm}";
        }

        if (!string.IsNullOrEmpty(parsed.Use) && parsed.Use != "sig")
        {
            return $"has use '{parsed.Use}'; operator keys are signing keys (use 'sig' or leave it out)";
        }

        jwk = parsed;
        return null;
    }

    private static readonly string[] PrivateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

    private static string? PrivateMember(JsonElement element) =>
        PrivateMembers.FirstOrDefault(member => element.TryGetProperty(member, out _));
}
