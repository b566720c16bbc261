using Broker.Core.Attestation;

namespace Broker.Core.Issuance;

/// <summary>
/// An exchange of an agent's token down to a sub-agent (RFC 8693 with an actor token), as the
/// domain sees it. Left empty, scopes, phase and audience are the subject token's.
/// </summary>
/// <param name="SubjectToken">The delegating agent's Broker access token.</param>
/// <param name="ActorEvidence">The sub-agent's proof of identity.</param>
/// <param name="Scopes">A subset of the subject token's; empty means all of them.</param>
/// <param name="Phase">No more privileged than the subject token's (<see cref="DelegationDecision"/>); null means the same.</param>
/// <param name="Audience">The subject token's audience; null or empty means that one.</param>
/// <param name="TaskId">When set, must be the subject token's task (a delegated token is always for that one).</param>
public sealed record DelegationRequest(
    string SubjectToken,
    AttestationEvidence? ActorEvidence,
    IReadOnlyList<string> Scopes,
    TaskPhase? Phase,
    string? Audience,
    TimeSpan? RequestedTtl,
    string? PopPublicKeyJwk,
    string? Justification,
    RequestContext Context,
    DpopPresentation? Dpop = null,
    string? TaskId = null);

/// <summary>A delegated token, with where it sits in its chain.</summary>
public sealed record DelegatedCredential(IssuedCredential Credential, string TaskId, string ParentTokenId, DelegationChain Chain);

/// <summary>The subject token of an exchange, as this node validated it.</summary>
internal sealed record SubjectToken(
    string TokenId,
    string Owner,
    string TaskId,
    TaskPhase Phase,
    IReadOnlyList<string> Scopes,
    string Audience,
    DateTimeOffset ExpiresAt,
    IReadOnlyList<string> Actors,
    IReadOnlyList<string> Ancestors,
    TaskPhase AncestorPhase)
{
    /// <summary>The agent delegating: the token's current actor, or its owner for a direct token.</summary>
    public string Holder => Actors.Count > 0 ? Actors[0] : Owner;

    public int Depth => Actors.Count;

    /// <summary>The chain of a token exchanged from this one to <paramref name="actor"/>.</summary>
    public DelegationChain ExtendTo(string actor) => new(Owner, [actor, .. Actors], [TokenId, .. Ancestors], AncestorPhase);
}
