namespace Broker.Core.Issuance;

/// <summary>
/// Where a delegated token sits: the task's owner (its <c>sub</c>), the actors from the current
/// one back to the first sub-agent (its nested <c>act</c>), and the token ids it descends from,
/// parent first (<c>ancestor_jti</c>). One actor and one ancestor per hop.
/// </summary>
/// <param name="AncestorPhase">The phase of the owner's token the chain started from (<c>ancestor_phase</c>).</param>
public sealed record DelegationChain(string Owner, IReadOnlyList<string> Actors, IReadOnlyList<string> Ancestors, TaskPhase AncestorPhase)
{
    /// <summary>How many exchanges away from the owner's own token.</summary>
    public int Depth => Actors.Count;

    /// <summary>The agents in the order they delegated: the owner first, the current actor last.</summary>
    public IReadOnlyList<string> Agents => [Owner, .. Actors.Reverse()];
}
