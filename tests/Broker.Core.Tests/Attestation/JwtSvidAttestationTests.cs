using System.Text;
using System.Text.Json.Nodes;
using Broker.Core.Attestation;
using Broker.Core.Errors;
using Broker.Testing;

namespace Broker.Core.Tests.Attestation;

public sealed class JwtSvidAttestationTests : IDisposable
{
    private readonly AttestationHarness _h = new();

    public void Dispose() => _h.Dispose();

    [Fact]
    public async Task Valid_jwt_svid_is_accepted_as_its_spiffe_id()
    {
        var token = _h.Svid();

        var identity = await _h.AttestJwtAsync(token);

        Assert.Equal("spiffe://example.org/agents/planner", identity.WorkloadId);
        Assert.Equal(AttestationKind.JwtSvid, identity.Kind);
        Assert.Equal("example.org", identity.TrustSource);
        Assert.Equal(_h.Now.AddMinutes(5), identity.ProofExpiresAt);
        Assert.Null(identity.ProofId);
        Assert.Null(identity.CertificateThumbprint);
    }

    [Fact]
    public async Task Audience_given_as_a_one_element_array_is_accepted()
    {
        var token = _h.Svid(claims: c => c["aud"] = new JsonArray(AttestationHarness.Audience));

        var identity = await _h.AttestJwtAsync(token);

        Assert.Equal(_h.WorkloadId, identity.WorkloadId);
    }

    [Fact]
    public async Task Single_use_trust_domain_carries_the_jti_as_proof_id()
    {
        using var h = new AttestationHarness(singleUse: true);

        var identity = await h.AttestJwtAsync(h.Svid(claims: c => c["jti"] = "abc-123"));

        Assert.Equal("jwt-svid:example.org:abc-123", identity.ProofId);
    }

    [Fact]
    public async Task Single_use_trust_domain_refuses_a_proof_without_jti()
    {
        using var h = new AttestationHarness(singleUse: true);

        await h.RefusedJwtAsync(h.Svid(), BrokerErrors.AttestationClaimMissing);
    }

    [Fact]
    public async Task Missing_evidence_or_empty_token_is_refused_as_missing()
    {
        await Refusals.ExpectAsync(BrokerErrors.AttestationMissing, () => _h.Attestor.AttestAsync(null!, CancellationToken.None).AsTask());
        await _h.RefusedJwtAsync("", BrokerErrors.AttestationMissing);
    }

    [Theory]
    [InlineData("none")]
    [InlineData("None")]
    [InlineData("NONE")]
    [InlineData("nOnE")]
    public async Task Alg_none_in_any_case_is_refused(string alg)
    {
        await _h.RefusedJwtAsync(TokenForger.AlgNone(_h.Svid(), alg), BrokerErrors.AttestationAlgorithmNotAllowed);
    }

    [Theory]
    [InlineData("HS256")]
    [InlineData("es256")]
    [InlineData("EdDSA")]
    [InlineData("RS1")]
    public async Task Algorithms_outside_the_allow_list_are_refused(string alg)
    {
        var token = _h.Svid(header: h => h["alg"] = alg);

        await _h.RefusedJwtAsync(token, BrokerErrors.AttestationAlgorithmNotAllowed);
    }

    [Fact]
    public async Task Hs256_signed_with_the_public_key_is_refused()
    {
        var forged = TokenForger.Hs256WithPublicKey(_h.Svid(), Encoding.ASCII.GetBytes(_h.Domain.PublicKeyPem));

        await _h.RefusedJwtAsync(forged, BrokerErrors.AttestationAlgorithmNotAllowed);
    }

    [Fact]
    public async Task Embedded_jwk_header_is_refused()
    {
        using var attacker = new TestTrustDomain("example.org");
        var forged = TokenForger.EmbeddedJwk(attacker, _h.Domain.KeyId, _h.WorkloadId, AttestationHarness.Audience, _h.Now);

        await _h.RefusedJwtAsync(forged, BrokerErrors.AttestationHeaderNotAllowed);
    }

    [Theory]
    [InlineData("jku")]
    [InlineData("x5u")]
    [InlineData("x5c")]
    [InlineData("x5t")]
    [InlineData("crit")]
    [InlineData("cty")]
    [InlineData("zip")]
    [InlineData("b64")]
    [InlineData("custom")]
    public async Task Headers_outside_alg_kid_typ_are_refused(string header)
    {
        var token = _h.Svid(header: h => h[header] = header == "crit" ? new JsonArray("exp") : "x");

        await _h.RefusedJwtAsync(token, BrokerErrors.AttestationHeaderNotAllowed);
    }

    [Theory]
    [InlineData("at+jwt")]
    [InlineData("jwt")]
    [InlineData("")]
    public async Task Typ_other_than_JWT_or_JOSE_is_refused(string typ)
    {
        await _h.RefusedJwtAsync(_h.Svid(header: h => h["typ"] = typ), BrokerErrors.AttestationHeaderNotAllowed);
    }

    [Fact]
    public async Task Typ_JOSE_or_no_typ_is_accepted()
    {
        await _h.AttestJwtAsync(_h.Svid(header: h => h["typ"] = "JOSE"));
        await _h.AttestJwtAsync(_h.Svid(header: h => h.Remove("typ")));
    }

    [Fact]
    public async Task Unknown_kid_is_refused()
    {
        await _h.RefusedJwtAsync(_h.Svid(header: h => h["kid"] = "no-such-key"), BrokerErrors.AttestationKeyUnknown);
    }

    [Fact]
    public async Task Missing_kid_is_refused()
    {
        await _h.RefusedJwtAsync(_h.Svid(header: h => h.Remove("kid")), BrokerErrors.AttestationKeyUnknown);
    }

    [Theory]
    [InlineData("../../etc/passwd")]
    [InlineData("/etc/passwd")]
    [InlineData("keys/1")]
    [InlineData("..\\..\\secrets")]
    [InlineData("a..b")]
    [InlineData("line\nbreak")]
    [InlineData("nul\u0000")]
    public async Task Path_like_or_control_character_kid_is_refused(string kid)
    {
        await _h.RefusedJwtAsync(_h.Svid(header: h => h["kid"] = kid), BrokerErrors.AttestationKeyUnknown);
    }

    [Fact]
    public async Task Overlong_kid_is_refused()
    {
        await _h.RefusedJwtAsync(_h.Svid(header: h => h["kid"] = new string('k', 129)), BrokerErrors.AttestationKeyUnknown);
    }

    [Fact]
    public async Task Zero_ecdsa_signature_is_refused()
    {
        await _h.RefusedJwtAsync(TokenForger.ZeroSignature(_h.Svid()), BrokerErrors.AttestationSignatureInvalid);
    }

    [Fact]
    public async Task Signature_by_another_key_under_a_trusted_kid_is_refused()
    {
        using var attacker = new TestTrustDomain("example.org", _h.Domain.KeyId);
        var forged = attacker.MintSvid(_h.WorkloadId, AttestationHarness.Audience, _h.Now);

        await _h.RefusedJwtAsync(forged, BrokerErrors.AttestationSignatureInvalid);
    }

    [Fact]
    public async Task Payload_changed_after_signing_is_refused()
    {
        var parts = _h.Svid().Split('.');
        var payload = TokenForger.PayloadOf(string.Join('.', parts));
        payload["sub"] = _h.Domain.SpiffeId("/agents/admin");
        var tampered = parts[0] + "." + TestTrustDomain.Encode(payload.ToJsonString()) + "." + parts[2];

        await _h.RefusedJwtAsync(tampered, BrokerErrors.AttestationSignatureInvalid);
    }

    [Fact]
    public async Task Truncated_signature_is_refused()
    {
        var token = _h.Svid();

        await _h.RefusedJwtAsync(token[..^10], BrokerErrors.AttestationSignatureInvalid);
    }

    [Fact]
    public async Task Jws_json_serialization_is_refused()
    {
        await _h.RefusedJwtAsync(TokenForger.JsonSerialization(_h.Svid()), BrokerErrors.AttestationMalformed);
    }

    [Fact]
    public async Task Nested_jwt_with_cty_is_refused()
    {
        await _h.RefusedJwtAsync(TokenForger.Nested(_h.Domain, _h.Svid()), BrokerErrors.AttestationHeaderNotAllowed);
    }

    [Fact]
    public async Task Nested_jwt_without_cty_is_refused()
    {
        await _h.RefusedJwtAsync(TokenForger.NestedWithoutContentType(_h.Domain, _h.Svid()), BrokerErrors.AttestationMalformed);
    }

    [Fact]
    public async Task Five_segment_jwe_is_refused()
    {
        await _h.RefusedJwtAsync(TokenForger.FiveSegments(_h.Svid()), BrokerErrors.AttestationMalformed);
    }

    [Theory]
    [InlineData("a.b")]
    [InlineData("a.b.c.d")]
    [InlineData("..")]
    [InlineData("eyJhbGciOiJFUzI1NiJ9 .e30.AAAA")]
    [InlineData("eyJhbGciOiJFUzI1NiJ9==.e30.AAAA")]
    public async Task Not_a_compact_jws_is_refused(string token)
    {
        await _h.RefusedJwtAsync(token, BrokerErrors.AttestationMalformed);
    }

    [Fact]
    public async Task Header_that_is_not_a_json_object_is_refused()
    {
        var token = _h.Domain.SignSegments(TestTrustDomain.Encode("[\"ES256\"]"), _h.Svid().Split('.')[1]);

        await _h.RefusedJwtAsync(token, BrokerErrors.AttestationMalformed);
    }

    [Fact]
    public async Task Duplicate_header_member_is_refused()
    {
        var forged = TokenForger.DuplicateHeaderMember(_h.Domain, _h.Svid(), "alg", "\"ES256\"", "\"none\"");

        await _h.RefusedJwtAsync(forged, BrokerErrors.AttestationMalformed);
    }

    [Fact]
    public async Task Duplicate_payload_claim_is_refused()
    {
        var forged = TokenForger.DuplicatePayloadMember(_h.Domain, _h.Svid(), "sub", $"\"{_h.WorkloadId}\"", $"\"{_h.Domain.SpiffeId("/agents/admin")}\"");

        await _h.RefusedJwtAsync(forged, BrokerErrors.AttestationMalformed);
    }

    [Fact]
    public async Task Duplicate_claim_spelled_with_a_json_escape_is_refused()
    {
        var token = _h.Svid();
        var payload = TokenForger.PayloadOf(token).ToJsonString();
        var forged = _h.Domain.SignCompact(TokenForger.HeaderOf(token).ToJsonString(), payload[..^1] + ",\"\\u0073ub\":\"spiffe://example.org/agents/admin\"}");

        await _h.RefusedJwtAsync(forged, BrokerErrors.AttestationMalformed);
    }

    [Fact]
    public async Task Duplicate_member_in_a_nested_claim_object_is_refused()
    {
        var token = _h.Svid();
        var payload = TokenForger.PayloadOf(token).ToJsonString();
        var forged = _h.Domain.SignCompact(TokenForger.HeaderOf(token).ToJsonString(), payload[..^1] + ",\"ctx\":{\"a\":1,\"a\":2}}");

        await _h.RefusedJwtAsync(forged, BrokerErrors.AttestationMalformed);
    }

    [Fact]
    public async Task Token_over_the_size_limit_is_refused()
    {
        var forged = TokenForger.Oversize(_h.Domain, _h.WorkloadId, AttestationHarness.Audience, _h.Now, _h.Options.MaxProofBytes);

        await _h.RefusedJwtAsync(forged, BrokerErrors.AttestationTooLarge);
    }

    [Fact]
    public async Task Token_exactly_at_the_size_limit_is_accepted_and_one_byte_less_of_limit_refuses_it()
    {
        var token = _h.Svid(claims: c => c["pad"] = new string('x', 500));

        _h.Options.MaxProofBytes = token.Length - 1;
        await _h.RefusedJwtAsync(token, BrokerErrors.AttestationTooLarge);

        _h.Options.MaxProofBytes = token.Length;
        await _h.AttestJwtAsync(token);
    }

    [Fact]
    public async Task Expiry_is_honoured_up_to_one_tick_inside_the_skew_and_refused_at_the_boundary()
    {
        var token = _h.Svid(TimeSpan.FromMinutes(5));
        var exp = _h.Now.AddMinutes(5);

        _h.Time.SetUtcNow(exp + _h.Options.ClockSkew - TimeSpan.FromTicks(1));
        await _h.AttestJwtAsync(token);

        _h.Time.SetUtcNow(exp + _h.Options.ClockSkew);
        await _h.RefusedJwtAsync(token, BrokerErrors.AttestationExpired);
    }

    [Fact]
    public async Task Not_before_is_honoured_within_the_skew_and_refused_one_tick_beyond()
    {
        var nbf = _h.Now.AddMinutes(2);
        var token = _h.Svid(claims: c =>
        {
            c.Remove("iat");
            c["nbf"] = nbf.ToUnixTimeSeconds();
            c["exp"] = nbf.AddMinutes(5).ToUnixTimeSeconds();
        });

        _h.Time.SetUtcNow(nbf - _h.Options.ClockSkew - TimeSpan.FromTicks(1));
        await _h.RefusedJwtAsync(token, BrokerErrors.AttestationNotYetValid);

        _h.Time.Advance(TimeSpan.FromTicks(1));
        await _h.AttestJwtAsync(token);
    }

    [Fact]
    public async Task Issued_at_in_the_future_is_honoured_within_the_skew_and_refused_one_tick_beyond()
    {
        var iat = _h.Now.AddMinutes(2);
        var token = _h.Svid(claims: c =>
        {
            c["iat"] = iat.ToUnixTimeSeconds();
            c["exp"] = iat.AddMinutes(5).ToUnixTimeSeconds();
        });

        _h.Time.SetUtcNow(iat - _h.Options.ClockSkew - TimeSpan.FromTicks(1));
        await _h.RefusedJwtAsync(token, BrokerErrors.AttestationNotYetValid);

        _h.Time.Advance(TimeSpan.FromTicks(1));
        await _h.AttestJwtAsync(token);
    }

    [Fact]
    public async Task Lifetime_of_exactly_the_maximum_is_accepted_and_one_second_more_is_refused()
    {
        await _h.AttestJwtAsync(_h.Svid(_h.Options.MaxProofLifetime));

        await _h.RefusedJwtAsync(_h.Svid(_h.Options.MaxProofLifetime + TimeSpan.FromSeconds(1)), BrokerErrors.AttestationLifetimeTooLong);
    }

    [Fact]
    public async Task Lifetime_without_iat_is_measured_from_now()
    {
        var token = _h.Svid(_h.Options.MaxProofLifetime + TimeSpan.FromSeconds(1), claims: c => c.Remove("iat"));

        await _h.RefusedJwtAsync(token, BrokerErrors.AttestationLifetimeTooLong);
    }

    [Fact]
    public async Task Missing_exp_is_refused()
    {
        await _h.RefusedJwtAsync(_h.Svid(claims: c => c.Remove("exp")), BrokerErrors.AttestationClaimMissing);
    }

    [Theory]
    [InlineData("\"1700000000\"")]
    [InlineData("-5")]
    [InlineData("1e300")]
    [InlineData("null")]
    public async Task Exp_that_is_not_a_valid_time_is_refused(string exp)
    {
        var token = _h.Svid();
        var payload = TokenForger.PayloadOf(token);
        payload.Remove("exp");
        var forged = _h.Domain.SignCompact(TokenForger.HeaderOf(token).ToJsonString(), payload.ToJsonString()[..^1] + ",\"exp\":" + exp + "}");

        await _h.RefusedJwtAsync(forged, BrokerErrors.AttestationMalformed);
    }

    [Fact]
    public async Task Missing_audience_is_refused()
    {
        await _h.RefusedJwtAsync(_h.Svid(claims: c => c.Remove("aud")), BrokerErrors.AttestationClaimMissing);
    }

    [Fact]
    public async Task Audience_of_the_wrong_json_type_is_refused()
    {
        await _h.RefusedJwtAsync(_h.Svid(claims: c => c["aud"] = 5), BrokerErrors.AttestationMalformed);
        await _h.RefusedJwtAsync(_h.Svid(claims: c => c["aud"] = new JsonArray(AttestationHarness.Audience, 5)), BrokerErrors.AttestationMalformed);
    }

    [Fact]
    public async Task Empty_array_audience_is_refused()
    {
        await _h.RefusedJwtAsync(_h.Svid(claims: c => c["aud"] = new JsonArray()), BrokerErrors.AttestationAudienceMismatch);
    }

    [Fact]
    public async Task Empty_string_audience_is_refused()
    {
        await _h.RefusedJwtAsync(_h.Svid(claims: c => c["aud"] = ""), BrokerErrors.AttestationAudienceMismatch);
    }

    [Fact]
    public async Task Wrong_audience_is_refused()
    {
        await _h.RefusedJwtAsync(_h.Svid(claims: c => c["aud"] = "spiffe://broker.test/other"), BrokerErrors.AttestationAudienceMismatch);
    }

    [Fact]
    public async Task Audience_differing_only_in_case_is_refused()
    {
        await _h.RefusedJwtAsync(_h.Svid(claims: c => c["aud"] = AttestationHarness.Audience.ToUpperInvariant()), BrokerErrors.AttestationAudienceMismatch);
    }

    [Fact]
    public async Task Extra_audience_next_to_ours_is_refused()
    {
        var token = _h.Svid(claims: c => c["aud"] = new JsonArray(AttestationHarness.Audience, "spiffe://example.org/elsewhere"));

        await _h.RefusedJwtAsync(token, BrokerErrors.AttestationAudienceMismatch);
    }

    [Fact]
    public async Task Subject_in_an_unknown_trust_domain_is_refused()
    {
        var token = _h.Svid(claims: c => c["sub"] = "spiffe://evil.org/agents/planner");

        await _h.RefusedJwtAsync(token, BrokerErrors.AttestationTrustDomainUnknown);
    }

    [Fact]
    public async Task Svid_signed_by_another_trust_domain_is_refused()
    {
        using var other = new TestTrustDomain("other.org");
        var token = other.MintSvid(_h.WorkloadId, AttestationHarness.Audience, _h.Now);

        await _h.RefusedJwtAsync(token, BrokerErrors.AttestationKeyUnknown);
    }

    [Fact]
    public async Task Trust_domain_with_only_an_x509_bundle_does_not_vouch_for_jwt_svids()
    {
        _h.Policy.ReplaceTrust([_h.DomainPolicy with { JwtBundleFile = null, X509BundleFile = "/nonexistent/bundle.pem" }]);

        await _h.RefusedJwtAsync(_h.Svid(), BrokerErrors.AttestationTrustDomainUnknown);
    }

    [Theory]
    [InlineData("SPIFFE://example.org/agents/planner")]
    [InlineData("Spiffe://example.org/agents/planner")]
    [InlineData("spiffe://example.org:8443/agents/planner")]
    [InlineData("spiffe://user@example.org/agents/planner")]
    [InlineData("spiffe://example.org/agents/planner?admin=1")]
    [InlineData("spiffe://example.org/agents/planner#frag")]
    [InlineData("spiffe://example.org/agents/../admin")]
    [InlineData("spiffe://example.org/agents/./planner")]
    [InlineData("spiffe://example.org")]
    [InlineData("spiffe://example.org/")]
    [InlineData("spiffe://example.org//planner")]
    [InlineData("spiffe://Example.org/agents/planner")]
    [InlineData("spiffe://example.org/agents/pl%61nner")]
    [InlineData("https://example.org/agents/planner")]
    [InlineData("planner")]
    public async Task Malformed_spiffe_id_subject_is_refused(string subject)
    {
        await _h.RefusedJwtAsync(_h.Svid(claims: c => c["sub"] = subject), BrokerErrors.AttestationSubjectInvalid);
    }

    [Fact]
    public async Task Missing_subject_is_refused()
    {
        await _h.RefusedJwtAsync(_h.Svid(claims: c => c.Remove("sub")), BrokerErrors.AttestationClaimMissing);
    }

    [Fact]
    public async Task Subject_that_is_not_a_string_is_refused()
    {
        await _h.RefusedJwtAsync(_h.Svid(claims: c => c["sub"] = new JsonArray(_h.WorkloadId)), BrokerErrors.AttestationMalformed);
    }

    [Fact]
    public async Task Refusal_messages_do_not_echo_the_token_or_key()
    {
        var token = TokenForger.ZeroSignature(_h.Svid());

        var refusal = await _h.RefusedJwtAsync(token, BrokerErrors.AttestationSignatureInvalid);

        Assert.DoesNotContain(token.Split('.')[1], refusal.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(_h.Domain.KeyId, refusal.Message, StringComparison.Ordinal);
        Assert.Equal(FailureKind.Unauthenticated, refusal.Kind);
    }
}
