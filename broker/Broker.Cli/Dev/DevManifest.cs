using System.Text.Json;
using System.Text.Json.Serialization;

namespace Broker.Cli.Dev;

/// <summary>
/// The <c>dev.json</c> that <c>Broker.Server --dev</c> writes into its dev folder: where the
/// broker listens and which key signs the dev trust domain's JWT-SVIDs. Read as plain JSON so
/// brokerctl never depends on the server.
/// </summary>
internal sealed record DevManifest(
    [property: JsonPropertyName("trust_domain")] string TrustDomain,
    [property: JsonPropertyName("audience")] string Audience,
    [property: JsonPropertyName("grpc_address")] string GrpcAddress,
    [property: JsonPropertyName("issuer")] string Issuer,
    [property: JsonPropertyName("trust_key_file")] string TrustKeyFile,
    [property: JsonPropertyName("trust_key_id")] string TrustKeyId,
    [property: JsonPropertyName("policy_file")] string? PolicyFile,
    [property: JsonPropertyName("audit_file")] string? AuditFile,
    [property: JsonPropertyName("operator_key_file")] string? OperatorKeyFile = null,
    [property: JsonPropertyName("operator_key_id")] string? OperatorKeyId = null,
    [property: JsonPropertyName("operator_issuer")] string? OperatorIssuer = null,
    [property: JsonPropertyName("operator_audience")] string? OperatorAudience = null)
{
    public const string FileName = "dev.json";
    public const string DefaultDirectory = ".dev";
    public const int MaxFileBytes = 64 * 1024;

    /// <summary>Where this manifest was read from, for error messages.</summary>
    [JsonIgnore]
    public string ManifestPath { get; init; } = FileName;

    private static readonly JsonSerializerOptions JsonOptions = new() { AllowTrailingCommas = true, ReadCommentHandling = JsonCommentHandling.Skip };

    /// <summary>Reads <c>dev.json</c> from <paramref name="directory"/>; every failure is a local error saying how to fix it.</summary>
    public static DevManifest Load(string directory)
    {
        var path = Path.GetFullPath(Path.Combine(directory, FileName));
        if (!File.Exists(path))
        {
            throw CliException.Local(
                $"no dev environment at '{path}'. Start the broker in dev mode first "
                + "('dotnet run --project broker/Broker.Server -- --dev' from the folder you run brokerctl in), or point --dev-dir at its folder.");
        }

        if (new FileInfo(path).Length > MaxFileBytes)
        {
            throw CliException.Local($"'{path}' is larger than {MaxFileBytes} bytes; it is not a dev manifest.");
        }

        DevManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<DevManifest>(File.ReadAllText(path), JsonOptions);
        }
        catch (JsonException ex)
        {
            throw CliException.Local($"'{path}' is not valid JSON: {ex.Message}");
        }

        var missing = new List<string>();
        if (string.IsNullOrWhiteSpace(manifest?.TrustDomain)) missing.Add("trust_domain");
        if (string.IsNullOrWhiteSpace(manifest?.Audience)) missing.Add("audience");
        if (string.IsNullOrWhiteSpace(manifest?.GrpcAddress)) missing.Add("grpc_address");
        if (string.IsNullOrWhiteSpace(manifest?.TrustKeyFile)) missing.Add("trust_key_file");
        if (string.IsNullOrWhiteSpace(manifest?.TrustKeyId)) missing.Add("trust_key_id");
        if (manifest is null || missing.Count > 0)
        {
            throw CliException.Local($"'{path}' lacks {string.Join(", ", missing)}; restart the broker with --dev to rewrite it.");
        }

        // A relative key path is relative to the manifest, not to wherever brokerctl runs.
        var folder = Path.GetDirectoryName(path)!;
        var keyFile = Path.GetFullPath(manifest.TrustKeyFile, folder);
        var operatorKeyFile = string.IsNullOrWhiteSpace(manifest.OperatorKeyFile) ? null : Path.GetFullPath(manifest.OperatorKeyFile, folder);
        return manifest with { TrustKeyFile = keyFile, OperatorKeyFile = operatorKeyFile, ManifestPath = path };
    }
}
