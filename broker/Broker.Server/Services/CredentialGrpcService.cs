using Broker.Core;
using Broker.Core.Approvals;
using Broker.Core.Attestation;
using Broker.Core.Errors;
using Broker.Core.Issuance;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using CoreEndTask = Broker.Core.Issuance.EndTaskRequest;
using CorePhase = Broker.Core.TaskPhase;

namespace Broker.Server.Services;

/// <summary>Thin adapter from the wire contract to <see cref="CredentialIssuer"/>.</summary>
internal sealed partial class CredentialGrpcService : CredentialService.CredentialServiceBase
{
    /// <summary>
    /// How often a waiting agent's approval is read again without a change notification (any
    /// node may record the vote; notifications are best effort).
    /// </summary>
    internal static readonly TimeSpan ApprovalPollInterval = TimeSpan.FromSeconds(2);

    private readonly CredentialIssuer _issuer;
    private readonly ApprovalWakeups _wakeups;
    private readonly TimeProvider _time;

    public CredentialGrpcService(CredentialIssuer issuer, ApprovalWakeups wakeups, TimeProvider time)
    {
        _issuer = issuer;
        _wakeups = wakeups;
        _time = time;
    }

    public override async Task<IssueCredentialResponse> IssueCredential(IssueCredentialRequest request, ServerCallContext context)
    {
        var ttl = Ttl(request.RequestedTtl);
        var outcome = await _issuer.IssueAsync(
            new IssueRequest(
                request.TaskId,
                ToPhase(request.Phase),
                request.Scopes,
                request.Audience,
                ttl,
                ToEvidence(request.Attestation, context),
                request.PopPublicKeyJwk,
                request.Justification,
                CallContext.From(context)),
            context.CancellationToken);

        if (outcome.Pending is { } pending)
        {
            return new IssueCredentialResponse { Pending = ApprovalWire.ToPending(pending) };
        }

        var issued = outcome.Credential!;
        return new IssueCredentialResponse
        {
            AccessToken = issued.AccessToken,
            TokenId = issued.TokenId,
            GrantedScopes = { issued.GrantedScopes },
            ExpiresAt = Timestamp.FromDateTimeOffset(issued.ExpiresAt),
            Subject = issued.Subject,
            Phase = request.Phase,
            PolicyDigest = issued.PolicyDigest,
            TokenType = issued.TokenType,
        };
    }

    public override async Task WaitForApproval(WaitForApprovalRequest request, IServerStreamWriter<ApprovalUpdate> responseStream, ServerCallContext context)
    {
        var call = CallContext.From(context);
        var identity = await _issuer.AttestWaiterAsync(ToEvidence(request.Attestation, context), call, context.CancellationToken);
        var sentVotes = -1;

        // Reads shared state on every change notification (and now and then without one), so the
        // vote may land on any node and the agent may reconnect to any node.
        while (true)
        {
            using var wakeup = _wakeups.Register(request.ApprovalId);
            var progress = await _issuer.CheckApprovalAsync(request.ApprovalId, identity, call, context.CancellationToken);
            var approval = progress.Record.Request;
            if (progress.Credential is { } issued)
            {
                await responseStream.WriteAsync(Update(ApprovalState.Consumed, progress, ApprovalWire.ToWire(issued)), context.CancellationToken);
                return;
            }

            if (progress.Secret is { } secret)
            {
                var update = Update(ApprovalState.Consumed, progress, null);
                update.Secret = SecretWire.ToWire(secret);
                await responseStream.WriteAsync(update, context.CancellationToken);
                return;
            }

            if (progress.Record.Votes.Count != sentVotes)
            {
                sentVotes = progress.Record.Votes.Count;
                await responseStream.WriteAsync(Update(ApprovalState.Pending, progress, null), context.CancellationToken);
            }

            var untilExpiry = approval.ExpiresAt - _time.GetUtcNow();
            var wait = untilExpiry > TimeSpan.Zero && untilExpiry < ApprovalPollInterval ? untilExpiry : ApprovalPollInterval;
            using (var poll = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken))
            {
                await Task.WhenAny(wakeup.Changed, Task.Delay(wait, _time, poll.Token));
                await poll.CancelAsync();
            }

            context.CancellationToken.ThrowIfCancellationRequested();
        }
    }

    private static ApprovalUpdate Update(ApprovalState state, ApprovalProgress progress, IssueCredentialResponse? credential) => new()
    {
        State = state,
        Approvals = progress.Record.Votes.Count,
        Credential = credential,
        ApprovalId = progress.Record.Request.Id,
        RequestDigest = progress.Record.Request.Digest,
        ExpiresAt = Timestamp.FromDateTimeOffset(progress.Record.Request.ExpiresAt),
    };

    public override async Task<EndTaskResponse> EndTask(Broker.V1.EndTaskRequest request, ServerCallContext context)
    {
        var endedAt = await _issuer.EndTaskAsync(
            new CoreEndTask(request.TaskId, ToEvidence(request.Attestation, context), request.Reason, CallContext.From(context)),
            context.CancellationToken);
        return new EndTaskResponse { EndedAt = Timestamp.FromDateTimeOffset(endedAt) };
    }

    /// <summary>An optional requested lifetime off the wire: positive and at most one day when set.</summary>
    private static TimeSpan? Ttl(Duration? duration)
    {
        if (duration is null)
        {
            return null;
        }

        if (duration.Seconds < 0 || duration.Nanos < 0 || duration.Seconds > 86_400)
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.TtlInvalid, "requested_ttl must be positive and at most one day.");
        }

        return duration.ToTimeSpan();
    }

    internal static CorePhase? ToPhase(Phase phase) => phase switch
    {
        Phase.Planning => CorePhase.Planning,
        Phase.Execution => CorePhase.Execution,
        Phase.Recovery => CorePhase.Recovery,
        _ => null,
    };

    internal static AttestationEvidence? ToEvidence(AttestationProof? proof, ServerCallContext context) => proof?.KindCase switch
    {
        AttestationProof.KindOneofCase.JwtSvid => new JwtSvidEvidence(proof.JwtSvid),
        AttestationProof.KindOneofCase.OidcToken => new OidcTokenEvidence(proof.OidcToken),
        AttestationProof.KindOneofCase.X509Svid when proof.X509Svid =>
            new X509SvidEvidence(context.GetHttpContext().Connection.ClientCertificate),
        _ => null,
    };
}
