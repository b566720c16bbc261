using Broker.Core.Risk;
using Broker.V1;
using Grpc.Core;

namespace Broker.Server.Services;

/// <summary>Thin adapter from the wire contract to <see cref="RiskService"/> for runtime-protection services.</summary>
internal sealed class SignalGrpcService : SignalService.SignalServiceBase
{
    private readonly RiskService _risk;

    public SignalGrpcService(RiskService risk) => _risk = risk;

    public override async Task<ReportSignalResponse> ReportSignal(ReportSignalRequest request, ServerCallContext context)
    {
        var receipt = await _risk.ReportAsync(
            CredentialGrpcService.ToEvidence(request.Attestation, context),
            new SignalReport(
                request.SignalId,
                request.Agent,
                request.TaskId,
                RiskWire.ToName(request.Level),
                request.Score,
                request.Detector,
                request.EvidenceRef,
                request.ObservedAt?.ToDateTimeOffset(),
                request.ValidUntil?.ToDateTimeOffset()),
            CallContext.From(context),
            context.CancellationToken);
        return new ReportSignalResponse
        {
            SignalId = receipt.SignalId,
            Outcome = RiskWire.ToWire(receipt.Status),
            Contained = receipt.Contained,
            RevocationIds = { receipt.RevocationIds },
        };
    }
}
