using System.Text.Json;
using System.Text.Json.Nodes;
using Broker.Core.Attestation.Internal;
using Broker.Core.Errors;
using Broker.Testing;
using CsCheck;

namespace Broker.Core.Tests.Properties;

/// <summary>
/// The JWS pre-flight on random tokens: it refuses only with its documented reasons, accepts
/// only what its rules (restated here independently) allow, and hands back what it was given.
/// </summary>
public sealed class JwsPreflightProperties
{
    private const int MaxBytes = 8 * 1024;

    private static readonly string[] Reasons =
    [
        BrokerErrors.AttestationMissing, BrokerErrors.AttestationMalformed, BrokerErrors.AttestationTooLarge,
        BrokerErrors.AttestationAlgorithmNotAllowed, BrokerErrors.AttestationHeaderNotAllowed, BrokerErrors.AttestationKeyUnknown,
    ];

    private static readonly string[] Allowed = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"];

    private static readonly Gen<JwsProfile> Profiles = Gen.OneOf<JwsProfile>(JwsProfile.JwtSvid, JwsProfile.Oidc, JwsProfile.SecurityEvent);

    private static readonly Gen<JsonNode?> Values = Gen.OneOf<JsonNode?>(
        Gen.OneOf("ES256", "RS256", "none", "HS256", "es256", "JWT", "JOSE", "secevent+jwt", "at+jwt", "k-1", "../k", "", "a/b").Select(s => (JsonNode?)JsonValue.Create(s)),
        Gen.Int.Select(i => (JsonNode?)JsonValue.Create(i)),
        Gen.Const<JsonNode?>(() => null),
        Gen.Const<JsonNode?>(() => new JsonObject()),
        Gen.Const<JsonNode?>(() => new JsonArray("x")));

    private static readonly Gen<string> Names = Gen.OneOf("alg", "kid", "typ", "jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "cty", "zip", "b64", "enc");

    private static readonly Gen<string> Headers =
        Gen.Select(Names, Values).Array[0, 5].Select(members =>
        {
            // Written by hand so duplicate names reach the pre-flight.
            var parts = members.Select(m => JsonSerializer.Serialize(m.Item1) + ":" + (m.Item2?.ToJsonString() ?? "null"));
            return "{" + string.Join(',', parts) + "}";
        });

    private static readonly Gen<string> Payloads = Gen.OneOf("{\"sub\":\"x\"}", "{}", "[]", "\"x\"", "{\"a\":1,\"a\":2}", "{\"a\":{\"b\":[{\"c\":{}}]}}", "not json", "{\"sub\":\"\\u0000\"}");

    private static readonly Gen<string> Signatures = Gen.OneOf("c2ln", "", "c2lnA", "c2l", "c2ln=", "AAAA");

    private static readonly Gen<string> StructuredTokens =
        from header in Headers
        from payload in Payloads
        from signature in Signatures
        select TestTrustDomain.Encode(header) + "." + TestTrustDomain.Encode(payload) + "." + signature;

    private static readonly Gen<string> RandomTokens = Gen.String[Mutations.HostileChar, 0, 120];

    [Fact]
    public void Random_and_structured_tokens_are_refused_only_with_documented_reasons()
    {
        Gen.Select(Gen.OneOf(StructuredTokens, RandomTokens), Profiles).Sample(
            (token, profile) =>
            {
                try
                {
                    JwsPreflight.Check(token, MaxBytes, profile);
                }
                catch (BrokerException e)
                {
                    Assert.Equal(FailureKind.Unauthenticated, e.Kind);
                    Assert.Contains(e.Reason, Reasons);
                }
            },
            iter: Mutations.Iterations * 5,
            threads: 1);
    }

    [Fact]
    public void An_accepted_token_satisfies_every_rule_of_its_profile()
    {
        Gen.Select(StructuredTokens, Profiles).Sample(
            (token, profile) =>
            {
                JwsParts parts;
                try
                {
                    parts = JwsPreflight.Check(token, MaxBytes, profile);
                }
                catch (BrokerException)
                {
                    return;
                }

                var segments = token.Split('.');
                Assert.Equal(3, segments.Length);
                var header = JsonNode.Parse(Convert.FromBase64String(Pad(segments[0])))!.AsObject();
                var names = header.Select(m => m.Key).ToList();
                Assert.Equal(names.Count, names.Distinct(StringComparer.Ordinal).Count());
                Assert.Contains((string?)header["alg"], Allowed);
                Assert.Equal(parts.Algorithm, (string?)header["alg"]);
                Assert.Equal(parts.KeyId, (string?)header["kid"]);
                Assert.True(JwsPreflight.IsAcceptableKeyId(parts.KeyId));
                var allowedNames = profile switch
                {
                    JwsProfile.Oidc => new[] { "alg", "kid", "typ", "x5t", "x5t#S256" },
                    _ => ["alg", "kid", "typ"],
                };
                Assert.All(names, n => Assert.Contains(n, allowedNames));
                var typ = header["typ"]?.GetValue<string>();
                if (profile == JwsProfile.SecurityEvent)
                {
                    Assert.Equal("secevent+jwt", typ);
                }
                else
                {
                    Assert.True(typ is null or "JWT" or "JOSE", typ);
                }

                Assert.Equal(JsonValueKind.Object, parts.Payload.ValueKind);
            },
            iter: Mutations.Iterations * 5,
            threads: 1);
    }

    [Fact]
    public void A_well_formed_token_round_trips_its_algorithm_key_id_and_payload()
    {
        var tokens =
            from alg in Gen.OneOf<string>(Allowed)
            from kid in Gen.String[Gen.Char["abcXYZ019-_.:"], 1, 40].Where(k => !k.Contains("..", StringComparison.Ordinal))
            from sub in Gen.String[1, 30]
            select (alg, kid, sub);

        tokens.Sample(
            (alg, kid, sub) =>
            {
                var header = new JsonObject { ["alg"] = alg, ["kid"] = kid, ["typ"] = "JWT" }.ToJsonString();
                var payload = new JsonObject { ["sub"] = sub }.ToJsonString();
                var token = TestTrustDomain.Encode(header) + "." + TestTrustDomain.Encode(payload) + ".c2ln";

                var parts = JwsPreflight.Check(token, MaxBytes, JwsProfile.JwtSvid);

                Assert.Equal(alg, parts.Algorithm);
                Assert.Equal(kid, parts.KeyId);
                Assert.Equal(sub, parts.Payload.GetProperty("sub").GetString());
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
