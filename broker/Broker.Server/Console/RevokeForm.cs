using System.Globalization;
using Broker.Core;
using Broker.Core.Errors;
using Broker.Revocation;

namespace Broker.Server.OperatorConsole;

/// <summary>
/// The revoke form's fields and the one selector they name, any kind the API takes. Only the
/// shape is checked here; <c>Revoker</c> validates the selector as it does for the API.
/// </summary>
public sealed class RevokeForm
{
    public static readonly IReadOnlyList<string> Kinds = ["task", "task-phase", "agent", "token", "trust-domain", "issued-before"];

    public string Kind { get; set; } = "task";

    public string? Value { get; set; }

    public string? Phase { get; set; }

    /// <summary>issued-before: the moment (ISO 8601, UTC unless it says otherwise).</summary>
    public string? Before { get; set; }

    public string? Reason { get; set; }

    internal RevocationSelector ToSelector()
    {
        var value = Value?.Trim() ?? "";
        return Kind switch
        {
            "task" => RevocationSelector.ForTask(Required(value, "task id")),
            "task-phase" => RevocationSelector.ForTaskPhase(
                Required(value, "task id"),
                TaskPhaseNames.TryParse(Phase, out var phase) ? phase.ToWire() : throw BrokerErrors.InvalidArgument(BrokerErrors.SelectorInvalid, "Pick the phase: planning, execution or recovery.")),
            "agent" => RevocationSelector.ForAgent(Required(value, "agent (workload id)")),
            "token" => RevocationSelector.ForToken(Required(value, "token id")),
            "trust-domain" => RevocationSelector.ForTrustDomain(Required(value, "trust domain")),
            "issued-before" => RevocationSelector.IssuedBeforeTime(
                DateTimeOffset.TryParse(Before, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var before)
                    ? before
                    : throw BrokerErrors.InvalidArgument(BrokerErrors.SelectorInvalid, "issued-before needs a moment, e.g. 2026-12-02T08:00:00Z."),
                value.Length == 0 ? null : value),
            _ => throw BrokerErrors.InvalidArgument(BrokerErrors.SelectorInvalid, "Pick what to revoke: " + string.Join(", ", Kinds) + "."),
        };
    }

    private static string Required(string value, string what) =>
        value.Length > 0 ? value : throw BrokerErrors.InvalidArgument(BrokerErrors.SelectorInvalid, $"Name the {what} to revoke.");
}
