using System.Globalization;
using Broker.Core.Diagnostics;
using Broker.Core.Errors;
using Broker.Core.Policy;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Risk;

/// <summary>
/// The issuance-time check against the runtime layer's latest verdict: frozen agents and tasks
/// are refused, risk above the phase's ceiling is refused, and when no fresh risk is known (or
/// the state cannot be read) the phase's stance decides. Off while policy wires no signal source.
/// </summary>
public sealed partial class RiskGate
{
    private readonly IRiskStore _store;
    private readonly BrokerMetrics _metrics;
    private readonly IPolicyProvider _policy;
    private readonly TimeProvider _time;
    private readonly ILogger<RiskGate> _logger;

    public RiskGate(IRiskStore store, IPolicyProvider policy, TimeProvider time, ILogger<RiskGate> logger, BrokerMetrics metrics)
    {
        _metrics = metrics;
        _store = store;
        _policy = policy;
        _time = time;
        _logger = logger;
    }

    /// <summary>Throws a PERMISSION_DENIED (or, failing closed, UNAVAILABLE) <see cref="BrokerException"/> when risk forbids issuance.</summary>
    public async ValueTask CheckAsync(string workloadId, string taskId, TaskPhase phase, PhaseRule rule, CancellationToken cancellationToken)
    {
        if (_policy.Current.Signals is null)
        {
            return;
        }

        var ceiling = rule.RiskCeiling ?? RiskLevels.DefaultCeiling(phase);
        var stance = rule.OnUnknownRisk ?? RiskLevels.DefaultStance(phase);
        RiskView view;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        using var activity = BrokerActivity.Source.StartActivity("broker.state risk.get", System.Diagnostics.ActivityKind.Client);
        try
        {
            view = await _store.GetAsync(workloadId, taskId, _time.GetUtcNow(), cancellationToken);
            _metrics.StateCall("risk.get", succeeded: true, System.Diagnostics.Stopwatch.GetElapsedTime(started));
        }
        catch (Exception ex) when (ex is not BrokerException and not OperationCanceledException)
        {
            _metrics.StateCall("risk.get", succeeded: false, System.Diagnostics.Stopwatch.GetElapsedTime(started));
            Log.StateUnreadable(_logger, phase.ToWire(), stance.ToString(), ex);
            if (stance == UnknownRiskStance.Deny)
            {
                throw BrokerErrors.Unavailable(BrokerErrors.RiskStateUnavailable, $"Runtime risk cannot be read; the {phase.ToWire()} phase fails closed. Try again.", ex);
            }

            return;
        }

        if ((view.Agent.Freeze ?? view.Task.Freeze) is { } freeze)
        {
            var frozen = view.Agent.Freeze is not null ? "agent" : "task";
            throw BrokerErrors.PermissionDenied(
                BrokerErrors.AgentFrozen,
                $"Issuance for this {frozen} is frozen by risk signal {freeze.SignalId} (level {freeze.Level.ToWire()}) until the risk is cleared.",
                new Dictionary<string, string> { ["signal_id"] = freeze.SignalId, ["level"] = freeze.Level.ToWire(), ["frozen"] = frozen });
        }

        var current = Worse(view.Agent.Current, view.Task.Current);
        if (current is null)
        {
            if (stance == UnknownRiskStance.Deny)
            {
                throw BrokerErrors.PermissionDenied(
                    BrokerErrors.RiskUnknown,
                    $"No current runtime risk is known for this agent; the {phase.ToWire()} phase fails closed until the runtime-protection service reports one.");
            }

            return;
        }

        if (current.Level > ceiling)
        {
            throw BrokerErrors.PermissionDenied(
                BrokerErrors.RiskTooHigh,
                $"Runtime risk is {current.Level.ToWire()} (signal {current.SignalId}); the {phase.ToWire()} phase allows at most {ceiling.ToWire()}.",
                new Dictionary<string, string>
                {
                    ["signal_id"] = current.SignalId,
                    ["level"] = current.Level.ToWire(),
                    ["ceiling"] = ceiling.ToWire(),
                    ["valid_until"] = current.ValidUntil.ToString("O", CultureInfo.InvariantCulture),
                });
        }
    }

    private static RiskRecord? Worse(RiskRecord? a, RiskRecord? b) => a is null ? b : b is null || a.Level >= b.Level ? a : b;

    private static partial class Log
    {
        [LoggerMessage(EventId = 6100, Level = LogLevel.Error, Message = "Runtime risk state cannot be read; {Phase} requests follow the stance {Stance}")]
        public static partial void StateUnreadable(ILogger logger, string phase, string stance, Exception exception);
    }
}
