using Broker.Core.Attestation;

namespace Broker.Core.Policy;

/// <summary>A validated policy: trust sources and agent rules. Immutable once loaded.</summary>
public sealed class BrokerPolicy
{
    /// <summary><c>sha256:&lt;hex&gt;</c> of the policy file's exact bytes; recorded in every token and audit record.</summary>
    public required string Digest { get; init; }

    /// <summary>Where the policy was loaded from (for messages).</summary>
    public required string Source { get; init; }

    public required TrustPolicy Trust { get; init; }

    /// <summary>Agent rules in file order; the first whose pattern matches wins.</summary>
    public required IReadOnlyList<AgentRule> Agents { get; init; }

    /// <summary>Who may report runtime risk; null when no risk source is wired (the risk gate is off).</summary>
    public SignalPolicy? Signals { get; init; }

    /// <summary>Downstream credential engines (<c>secret_engines:</c>, docs/secrets.md); empty when none.</summary>
    public IReadOnlyList<SecretEnginePolicy> SecretEngines { get; init; } = [];

    public SecretEnginePolicy? FindSecretEngine(string name) => SecretEngines.FirstOrDefault(e => e.Name == name);

    /// <summary>
    /// The first rule whose pattern matches the identity, considering only rules of the
    /// identity's kind: <c>spiffe://</c> patterns match only identities a SPIFFE trust domain
    /// proved (JWT-SVID, X.509-SVID), every other pattern only OIDC-proven identities. The
    /// string alone never decides which kind of trust vouched for it.
    /// </summary>
    public AgentRule? FindRule(WorkloadIdentity identity) =>
        FindRule(identity.WorkloadId, spiffe: identity.Kind is AttestationKind.JwtSvid or AttestationKind.X509Svid);

    /// <summary>
    /// The rule of an agent known only by the workload id in a token this broker signed (a
    /// delegating agent): SPIFFE rules for a <c>spiffe://</c> id, the others for the rest, which
    /// is how the id was proved (OIDC workload ids never start with <c>spiffe://</c>).
    /// </summary>
    public AgentRule? FindRuleForTokenSubject(string workloadId) =>
        FindRule(workloadId, spiffe: workloadId.StartsWith("spiffe://", StringComparison.Ordinal));

    private AgentRule? FindRule(string workloadId, bool spiffe)
    {
        foreach (var rule in Agents)
        {
            if (rule.Match.IsSpiffe == spiffe && rule.Match.IsMatch(workloadId))
            {
                return rule;
            }
        }

        return null;
    }
}

public sealed record TrustPolicy(
    IReadOnlyList<SpiffeTrustDomainPolicy> SpiffeDomains,
    IReadOnlyList<OidcIssuerPolicy> OidcIssuers);

/// <summary>A SPIFFE trust domain: its JWT bundle (JWKS, file or HTTPS URL) and/or X.509 CA bundle (PEM file).</summary>
/// <param name="TrustDomain">e.g. <c>example.org</c> (lower case, no scheme).</param>
/// <param name="JwtBundleFile">Absolute path of a JWKS file.</param>
/// <param name="JwtBundleUrl">HTTPS URL serving a JWKS.</param>
/// <param name="X509BundleFile">Absolute path of a PEM file of CA certificates (trust anchors).</param>
/// <param name="RefreshInterval">How often a bundle is re-read; an unknown <c>kid</c> triggers an early refresh at most this often.</param>
/// <param name="SingleUseProofs">When true, a JWT-SVID must carry a <c>jti</c> and is accepted once.</param>
public sealed record SpiffeTrustDomainPolicy(
    string TrustDomain,
    string? JwtBundleFile,
    Uri? JwtBundleUrl,
    string? X509BundleFile,
    TimeSpan RefreshInterval,
    bool SingleUseProofs);

/// <summary>An OIDC issuer whose workload tokens are accepted.</summary>
/// <param name="Issuer">Exact <c>iss</c> value.</param>
/// <param name="JwksUri">Where its keys are; when null, discovered from <c>{issuer}/.well-known/openid-configuration</c>.</param>
/// <param name="JwksFile">Absolute path of a JWKS file (air-gapped clusters, tests).</param>
/// <param name="SubjectClaim">Claim holding the workload's subject (default <c>sub</c>).</param>
/// <param name="WorkloadIdPrefix">Prefix for the workload id: id = prefix + subject (default <c>oidc:{issuer}#</c>).</param>
/// <param name="RefreshInterval">How often keys are re-read.</param>
/// <param name="SingleUseProofs">When true, a token must carry a <c>jti</c> and is accepted once.</param>
public sealed record OidcIssuerPolicy(
    string Issuer,
    Uri? JwksUri,
    string? JwksFile,
    string SubjectClaim,
    string WorkloadIdPrefix,
    TimeSpan RefreshInterval,
    bool SingleUseProofs);

/// <summary>What a set of agents may get, per phase.</summary>
/// <param name="Owner">The operator (their name claim) answerable for these agents; they may never approve the agents' requests.</param>
/// <param name="DefaultPhase">The phase of a standard OAuth request that names no task (docs/oauth.md); null refuses such requests.</param>
/// <param name="DelegateTo">Sub-agents these agents may exchange their tokens down to (docs/policy.md, delegation); empty when none.</param>
/// <param name="MaxDelegationDepth">The longest chain a token these agents delegate may end up in; 0 allows no delegation.</param>
public sealed record AgentRule(
    string Name,
    WorkloadPattern Match,
    IReadOnlyDictionary<TaskPhase, PhaseRule> Phases,
    string? Owner = null,
    TaskPhase? DefaultPhase = null,
    IReadOnlyList<WorkloadPattern>? DelegateTo = null,
    int MaxDelegationDepth = 0)
{
    /// <summary>Whether these agents may delegate to <paramref name="workloadId"/> at all.</summary>
    public bool MayDelegateTo(string workloadId) => MaxDelegationDepth > 0 && DelegateTo is { } patterns && patterns.Any(p => p.IsMatch(workloadId));
}

/// <summary>What one phase allows.</summary>
/// <param name="KeepTokensOnExit">When the task moves to another phase, this phase's tokens stay valid until they expire (default: revoked).</param>
/// <param name="RiskCeiling">The highest runtime risk still allowed; null means the phase's default (<see cref="Risk.RiskLevels.DefaultCeiling"/>).</param>
/// <param name="OnUnknownRisk">What to do when no fresh risk is known; null means the phase's default (<see cref="Risk.RiskLevels.DefaultStance"/>).</param>
/// <param name="Gates">Scopes that wait for human approval (docs/approvals.md); null or empty when none are gated.</param>
/// <param name="Secrets">Downstream credentials the phase may get (docs/secrets.md); null when none.</param>
public sealed record PhaseRule(
    IReadOnlySet<string> Scopes,
    IReadOnlySet<string> Audiences,
    TimeSpan MaxTtl,
    bool KeepTokensOnExit = false,
    Risk.RiskLevel? RiskCeiling = null,
    Risk.UnknownRiskStance? OnUnknownRisk = null,
    IReadOnlyList<GatedScopes>? Gates = null,
    IReadOnlyList<SecretGrant>? Secrets = null);

/// <summary>Scopes issued only after <see cref="Quorum"/> distinct approvers holding one of <see cref="Approvers"/> say yes.</summary>
/// <param name="Approvers">Groups or roles (from the operator token's roles claim) whose members may approve.</param>
/// <param name="Validity">How long a request stays open, and an approval usable, from the moment it is asked.</param>
/// <param name="RequireJustification">The agent must say why; a request without a justification is refused.</param>
public sealed record GatedScopes(
    IReadOnlySet<string> Scopes,
    IReadOnlySet<string> Approvers,
    int Quorum,
    TimeSpan Validity,
    bool RequireJustification);
