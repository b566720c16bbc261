using Broker.Core.Approvals;
using Broker.Core.Issuance;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;

namespace Broker.Server.Services;

/// <summary>Maps approvals between the wire contract and the domain.</summary>
internal static class ApprovalWire
{
    public static ApprovalState ToWire(ApprovalStatus status) => status switch
    {
        ApprovalStatus.Pending => ApprovalState.Pending,
        ApprovalStatus.Approved => ApprovalState.Approved,
        ApprovalStatus.Denied => ApprovalState.Denied,
        ApprovalStatus.Expired => ApprovalState.Expired,
        ApprovalStatus.Consumed => ApprovalState.Consumed,
        _ => ApprovalState.Unspecified,
    };

    public static PendingApproval ToPending(ApprovalRequest request) => new()
    {
        ApprovalId = request.Id,
        RequestDigest = request.Digest,
        ExpiresAt = Timestamp.FromDateTimeOffset(request.ExpiresAt),
        GatedScopes = { request.Gates.SelectMany(g => g.Scopes).Where(request.Scopes.Contains).Distinct().Order(StringComparer.Ordinal) },
    };

    public static ApprovalInfo ToWire(ApprovalRecord record, DateTimeOffset now)
    {
        var r = record.Request;
        return new ApprovalInfo
        {
            ApprovalId = r.Id,
            RequestDigest = r.Digest,
            State = ToWire(record.StatusAt(now)),
            Agent = r.Agent,
            TaskId = r.TaskId,
            Phase = ToWire(r.Phase),
            Scopes = { r.Scopes },
            Audience = r.Audience,
            Ttl = Duration.FromTimeSpan(TimeSpan.FromSeconds(r.TtlSeconds)),
            Risk = r.Risk,
            Justification = r.Justification ?? "",
            CreatedAt = Timestamp.FromDateTimeOffset(r.CreatedAt),
            ExpiresAt = Timestamp.FromDateTimeOffset(r.ExpiresAt),
            Gates = { r.Gates.Select(g => new ApprovalGateInfo { Scopes = { g.Scopes }, Approvers = { g.Approvers }, Quorum = g.Quorum }) },
            Approvals = { record.Votes.Select(v => new Broker.V1.ApprovalVote { Approver = v.Approver, At = Timestamp.FromDateTimeOffset(v.At) }) },
            DeniedBy = record.Status == ApprovalStatus.Denied ? record.DecidedBy ?? "" : "",
            DenyReason = record.Status == ApprovalStatus.Denied ? record.Reason ?? "" : "",
            TokenId = record.TokenId ?? "",
            Owner = r.Owner ?? "",
            PolicyDigest = r.PolicyDigest,
        };
    }

    public static IssueCredentialResponse ToWire(IssuedCredential issued) => new()
    {
        AccessToken = issued.AccessToken,
        TokenId = issued.TokenId,
        GrantedScopes = { issued.GrantedScopes },
        ExpiresAt = Timestamp.FromDateTimeOffset(issued.ExpiresAt),
        Subject = issued.Subject,
        Phase = ToWire(issued.Phase),
        PolicyDigest = issued.PolicyDigest,
        TokenType = issued.TokenType,
        ApprovalId = issued.ApprovalId ?? "",
    };

    private static Phase ToWire(Broker.Core.TaskPhase phase) => phase switch
    {
        Broker.Core.TaskPhase.Planning => Phase.Planning,
        Broker.Core.TaskPhase.Execution => Phase.Execution,
        Broker.Core.TaskPhase.Recovery => Phase.Recovery,
        _ => Phase.Unspecified,
    };
}
