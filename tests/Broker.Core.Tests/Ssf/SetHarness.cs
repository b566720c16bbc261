using System.Text.Json.Nodes;
using Broker.Core.Attestation;
using Broker.Core.Policy;
using Broker.Core.Ssf;
using Broker.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Core.Tests.Ssf;

/// <summary>A transmitter with a JWKS file, a <see cref="SecurityEventReader"/> on a fake clock, and SETs minted with any edits.</summary>
internal sealed class SetHarness : IDisposable
{
    public const string Issuer = "https://risk.example.org";
    public const string Audience = "https://broker.example.org";
    public const string Agent = "spiffe://example.org/agents/planner";

    public SetHarness(HttpClient? http = null)
    {
        Transmitter = new TestTrustDomain("risk.example.org", keyId: "ssf-1");
        Policy = new SsfTransmitterPolicy(Issuer, Transmitter.WriteJwksFile("ssf.jwks", use: null), null, null, SsfTransmitterPolicy.DefaultMaxAge);
        Http = http ?? new HttpClient();
        Reader = new SecurityEventReader(Options.Create(new AttestationOptions { Audience = Audience }), Time, Http);
    }

    public FakeTimeProvider Time { get; } = new(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));

    public TestTrustDomain Transmitter { get; }

    public SsfTransmitterPolicy Policy { get; }

    public HttpClient Http { get; }

    public SecurityEventReader Reader { get; }

    public static JsonObject Header(string alg = "ES256", string kid = "ssf-1") => new() { ["alg"] = alg, ["kid"] = kid, ["typ"] = "secevent+jwt" };

    public JsonObject Payload(string? jti = null, string level = "HIGH") => new()
    {
        ["iss"] = Issuer,
        ["aud"] = Audience,
        ["iat"] = Time.GetUtcNow().ToUnixTimeSeconds(),
        ["jti"] = jti ?? Guid.NewGuid().ToString("N"),
        ["sub_id"] = new JsonObject { ["format"] = "uri", ["uri"] = Agent },
        ["events"] = new JsonObject
        {
            [SecurityEventTypes.RiskLevelChange] = new JsonObject { ["current_level"] = level, ["previous_level"] = "LOW" },
        },
    };

    public string Mint(Action<JsonObject>? payload = null, JsonObject? header = null)
    {
        var body = Payload();
        payload?.Invoke(body);
        return Transmitter.Sign(header ?? Header(), body);
    }

    public ValueTask<SecurityEvent> ReadAsync(string set, SsfTransmitterPolicy? policy = null) =>
        Reader.ReadAsync(set, policy ?? Policy, Audience, CancellationToken.None);

    public async Task<SetRefusedException> RefusedAsync(string set, SsfTransmitterPolicy? policy = null) =>
        await Assert.ThrowsAsync<SetRefusedException>(async () => await ReadAsync(set, policy));

    public void Dispose()
    {
        Transmitter.Dispose();
        Http.Dispose();
    }
}
