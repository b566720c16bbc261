using System.Text.Json;

namespace Broker.Revocation;

/// <summary>
/// The claims that make a token delegated (RFC 8693 section 4.1), read the same way by broker
/// nodes and the resource-server SDK so both revoke it the same way: <c>act</c>, the current
/// actor with prior actors nested inside it, and <c>ancestor_jti</c>, the token ids it was
/// exchanged from, parent first. One of each per hop; anything else is not a Broker token.
/// </summary>
public static class DelegationClaims
{
    public const string Act = "act";
    public const string AncestorTokenIds = "ancestor_jti";

    /// <summary>
    /// The phase of the token the chain started from. A token is only exchanged for its own phase
    /// or planning, so every ancestor is of this phase or of the token's own: a phase revocation
    /// of either reaches the token.
    /// </summary>
    public const string AncestorPhase = "ancestor_phase";

    /// <summary>No chain is longer: policy cannot allow more (docs/policy.md), and a reader stops here.</summary>
    public const int MaxDepth = 8;

    /// <summary>The <c>ancestor_phase</c> claim: required on a delegated token, absent on a direct one.</summary>
    public static bool TryReadAncestorPhase(string? value, bool delegated, out string? phase)
    {
        phase = string.IsNullOrEmpty(value) ? null : value;
        return delegated == (phase is not null);
    }

    /// <summary>
    /// Reads the chain from the <c>act</c> claim's JSON and the <c>ancestor_jti</c> values. True
    /// with null lists for a direct token (neither claim); false when the chain is malformed or
    /// its two halves disagree, which a caller must treat as an invalid token.
    /// </summary>
    public static bool TryRead(string? actJson, IReadOnlyList<string>? ancestorIds, out string[]? actors, out string[]? ancestors)
    {
        actors = null;
        ancestors = null;
        var hasAncestors = ancestorIds is { Count: > 0 };
        if (string.IsNullOrEmpty(actJson))
        {
            return !hasAncestors;
        }

        if (!hasAncestors || ancestorIds!.Count > MaxDepth || ancestorIds.Any(string.IsNullOrEmpty))
        {
            return false;
        }

        List<string> chain = [];
        try
        {
            using var document = JsonDocument.Parse(actJson, new JsonDocumentOptions { MaxDepth = MaxDepth + 2 });
            var act = document.RootElement;
            while (true)
            {
                if (act.ValueKind != JsonValueKind.Object || chain.Count == MaxDepth
                    || !act.TryGetProperty("sub", out var sub) || sub.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(sub.GetString()))
                {
                    return false;
                }

                chain.Add(sub.GetString()!);
                if (!act.TryGetProperty(Act, out var prior))
                {
                    break;
                }

                act = prior;
            }
        }
        catch (JsonException)
        {
            return false;
        }

        if (chain.Count != ancestorIds.Count)
        {
            return false;
        }

        actors = [.. chain];
        ancestors = [.. ancestorIds];
        return true;
    }
}
