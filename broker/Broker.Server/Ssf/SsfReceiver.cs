using Broker.Core.Errors;
using Broker.Core.Issuance;
using Broker.Core.Policy;
using Broker.Core.Revocation;
using Broker.Core.Risk;
using Broker.Core.Ssf;
using Broker.Server.Hosting;
using Microsoft.Extensions.Options;

namespace Broker.Server.Ssf;

/// <summary>Applies the events of SETs the <see cref="SecurityEventReader"/> accepted: a signal, or a revocation.</summary>
internal sealed class SsfReceiver
{
    public const string ReasonRefused = "SSF_SET_REFUSED";

    private readonly IPolicyProvider _policy;
    private readonly RiskService _risk;
    private readonly Revoker _revoker;
    private readonly ISsfReplayStore _replay;
    private readonly SecurityEventReader _reader;
    private readonly BrokerOptions _options;
    private readonly TimeProvider _time;

    public SsfReceiver(IPolicyProvider policy, RiskService risk, Revoker revoker, ISsfReplayStore replay, SecurityEventReader reader, IOptions<BrokerOptions> options, TimeProvider time)
    {
        _policy = policy;
        _risk = risk;
        _revoker = revoker;
        _replay = replay;
        _reader = reader;
        _options = options.Value;
        _time = time;
    }

    public int MaxBytes => _reader.MaxBytes;

    /// <summary>Audits a refused SET within the sender's refusal budget; past it, returns the <c>RATE_LIMITED</c> refusal to answer instead.</summary>
    public ValueTask<BrokerException?> AuditRefusalAsync(SetRefusedException refusal, RequestContext context, CancellationToken cancellationToken) =>
        _risk.AuditSignalRefusalAsync(refusal.Issuer, $"{ReasonRefused}:{refusal.Err}", refusal.SignalId, context, Core.Refusals.RefusalSource.FromPeer(Core.Refusals.RefusalDoors.Ssf, context.Peer), cancellationToken);

    public async Task ReceiveAsync(string set, RequestContext context, CancellationToken cancellationToken)
    {
        if (_policy.Current.Signals is not { Ssf: { } ssf } signals)
        {
            throw new SetRefusedException("access_denied", "No Shared Signals transmitter is configured (signals.ssf).");
        }

        var audience = ssf.Audience ?? (string.IsNullOrEmpty(_options.Audience) ? _options.Issuer : _options.Audience);
        var received = await _reader.ReadAsync(set, ssf, audience, cancellationToken);

        // The jti is claimed before any effect: a replay is refused, not re-applied.
        var until = _time.GetUtcNow() + ssf.MaxAge + _reader.ClockSkew + _reader.ClockSkew;
        if (!await _replay.TryClaimAsync(received.Issuer, received.JwtId, until, cancellationToken))
        {
            throw new SetRefusedException("invalid_request", "jti was already received (replay).", received.Issuer, received.SignalId);
        }

        try
        {
            if (received.Level is null)
            {
                await _revoker.RevokeAsync(
                    [Broker.Revocation.RevocationSelector.ForAgent(received.Agent)],
                    RiskService.Actor,
                    $"CAEP session-revoked from {received.Issuer} (signal {received.SignalId})",
                    context,
                    cancellationToken);
                return;
            }

            var parsed = RiskLevels.TryParse(received.Level, out var known) ? known : RiskLevel.Critical;
            await _risk.ReportFromTransmitterAsync(
                received.Issuer,
                new SignalReport(received.SignalId, received.Agent, null, received.Level, Score(parsed), Detector(received.EventType), received.Evidence, received.Observed, received.Observed + signals.MaxValidity),
                context,
                cancellationToken);
        }
        catch (BrokerException ex) when (ex.Kind == FailureKind.Unavailable)
        {
            // Nothing (or not all) took effect: let the transmitter's retry through.
            await _replay.ReleaseAsync(received.Issuer, received.JwtId, CancellationToken.None);
            throw;
        }
    }

    private static string Detector(string eventType) => eventType switch
    {
        SecurityEventTypes.RiskLevelChange => "ssf.caep.risk-level-change",
        SecurityEventTypes.AccountDisabled => "ssf.risc.account-disabled",
        _ => "ssf.risc.credential-compromise",
    };

    private static double Score(RiskLevel level) => level switch
    {
        RiskLevel.None => 0,
        RiskLevel.Low => 25,
        RiskLevel.Medium => 50,
        RiskLevel.High => 75,
        _ => 100,
    };
}
