using System.Text.Json.Nodes;
using Broker.Core.Ssf;
using Broker.Core.Tests.Ssf;
using CsCheck;

namespace Broker.Core.Tests.Properties;

/// <summary>
/// The SSF SET reader on mutated and re-shaped SETs: it refuses only with <see cref="SetRefusedException"/>,
/// never accepts a SET whose bytes differ from what the transmitter signed, and reads back what was signed.
/// </summary>
public sealed class SecurityEventReaderProperties : IDisposable
{
    private readonly SetHarness _h = new();

    public void Dispose() => _h.Dispose();

    [Fact]
    public async Task A_mutated_set_is_always_refused_and_only_with_a_set_refusal()
    {
        var original = _h.Mint(p => p["jti"] = "original");
        Assert.Equal("ssf:original", (await _h.ReadAsync(original)).SignalId);

        await Mutations.Of(original).Where(m => m != original).SampleAsync(
            async mutated =>
            {
                var refused = await Assert.ThrowsAsync<SetRefusedException>(async () => await _h.ReadAsync(mutated));
                Assert.Contains(refused.Err, (string[])["invalid_request", "invalid_key", "invalid_issuer", "invalid_audience"]);
            },
            iter: Mutations.Iterations,
            threads: 1);
    }

    private static readonly Gen<JsonNode?> Values = Gen.OneOf<JsonNode?>(
        Gen.OneOf(SetHarness.Issuer, SetHarness.Audience, SetHarness.Agent, "", "x", SecurityEventTypes.SessionRevoked).Select(s => (JsonNode?)JsonValue.Create(s)),
        Gen.Long[-10, 253402300800].Select(l => (JsonNode?)JsonValue.Create(l)),
        Gen.Double.Select(d => (JsonNode?)JsonValue.Create(double.IsFinite(d) ? d : 0)),
        Gen.Const<JsonNode?>(() => null),
        Gen.Const<JsonNode?>(() => new JsonArray()),
        Gen.Const<JsonNode?>(() => new JsonObject()));

    private static readonly Gen<string> Claims = Gen.OneOf("iss", "aud", "iat", "exp", "nbf", "jti", "sub", "sub_id", "events", "txn");

    [Fact]
    public async Task Validly_signed_sets_with_reshaped_claims_are_read_or_refused_never_thrown_past()
    {
        var edits = Gen.Select(Claims, Values, Gen.Bool).Array[1, 4];

        await edits.SampleAsync(
            async changes =>
            {
                var set = _h.Mint(p =>
                {
                    foreach (var (claim, value, remove) in changes)
                    {
                        if (remove)
                        {
                            p.Remove(claim);
                        }
                        else
                        {
                            p[claim] = value?.DeepClone();
                        }
                    }
                });

                try
                {
                    var read = await _h.ReadAsync(set);

                    // Accepted: then what the strict rules demand holds.
                    var payload = JsonNode.Parse(System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(Pad(set.Split('.')[1]))))!.AsObject();
                    Assert.Equal(SetHarness.Issuer, (string?)payload["iss"]);
                    Assert.Equal(read.JwtId, (string?)payload["jti"]);
                    Assert.Single(payload["events"]!.AsObject());
                }
                catch (SetRefusedException)
                {
                }
            },
            iter: Mutations.Iterations,
            threads: 1);
    }

    [Fact]
    public async Task What_the_transmitter_signed_is_what_is_read()
    {
        var sets =
            from jti in Gen.String[Gen.Char["abcXYZ019-_:."], 1, 64]
            from level in Gen.OneOf("LOW", "medium", "High", "none", "CRITICAL")
            from age in Gen.Int[0, 240]
            select (jti, level, age);

        await sets.SampleAsync(
            async t =>
            {
                var iat = _h.Time.GetUtcNow().AddSeconds(-t.age);
                var set = _h.Mint(p =>
                {
                    p["jti"] = t.jti;
                    p["iat"] = iat.ToUnixTimeSeconds();
                    p["events"]![SecurityEventTypes.RiskLevelChange]!["current_level"] = t.level;
                });

                var read = await _h.ReadAsync(set);

                Assert.Equal(t.jti, read.JwtId);
                Assert.Equal("ssf:" + t.jti, read.SignalId);
                Assert.Equal(t.level.ToLowerInvariant(), read.Level);
                Assert.Equal(iat, read.IssuedAt);
                Assert.Equal(SetHarness.Agent, read.Agent);
            },
            iter: Mutations.Iterations,
            threads: 1);
    }

    private static string Pad(string segment)
    {
        var s = segment.Replace('-', '+').Replace('_', '/');
        return s + new string('=', (4 - (s.Length % 4)) % 4);
    }
}
