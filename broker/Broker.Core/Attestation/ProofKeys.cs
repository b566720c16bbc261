namespace Broker.Core.Attestation;

/// <summary>
/// Names a single-use proof's <c>jti</c> in the one replay keyspace that JWT-SVIDs, OIDC
/// tokens and SSF events share. Each attestation kind has its own typed prefix (the SSF
/// receiver's keys are <c>ssf:</c> + a digest), and the trust source comes before the
/// <c>jti</c> with a separator the source cannot contain (SPIFFE trust domains hold no
/// <c>:</c>, OIDC issuers no <c>#</c>), so a trust domain named <c>https</c> or <c>ssf</c>
/// cannot claim another kind's or another source's key.
/// </summary>
public static class ProofKeys
{
    public const string JwtSvidPrefix = "jwt-svid:";
    public const string OidcPrefix = "oidc:";

    public static string JwtSvid(string trustDomain, string jwtId) => JwtSvidPrefix + trustDomain + ":" + jwtId;

    public static string Oidc(string issuer, string jwtId) => OidcPrefix + issuer + "#" + jwtId;

    public const string DpopPrefix = "dpop:";

    /// <summary>A DPoP proof, by its key and <c>jti</c>: another key's proof may reuse the jti.</summary>
    public static string Dpop(string jkt, string jwtId) => DpopPrefix + jkt + ":" + jwtId;
}
