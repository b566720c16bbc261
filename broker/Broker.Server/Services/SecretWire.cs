using Broker.Core.Secrets;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;

namespace Broker.Server.Services;

/// <summary>Maps downstream credentials and leases between the domain and the wire contract.</summary>
internal static class SecretWire
{
    public static IssueSecretResponse ToWire(IssuedSecret secret) => new()
    {
        Credential = new DownstreamCredential
        {
            Database = new DatabaseLogin
            {
                Host = secret.Login.Host,
                Port = secret.Login.Port,
                Database = secret.Login.Database,
                Username = secret.Login.Username,
                Password = secret.Login.Password,
            },
        },
        LeaseId = secret.LeaseId,
        ExpiresAt = Timestamp.FromDateTimeOffset(secret.ExpiresAt),
        Engine = secret.Engine,
        Role = secret.Role,
        Phase = ToWire(secret.Phase),
        Subject = secret.Subject,
        PolicyDigest = secret.PolicyDigest,
        ApprovalId = secret.ApprovalId ?? "",
    };

    public static LeaseInfo ToWire(SecretLease lease) => new()
    {
        LeaseId = lease.LeaseId,
        Engine = lease.Engine,
        Role = lease.Role,
        Login = lease.Login,
        TaskId = lease.TaskId,
        Subject = lease.Subject,
        Phase = ToWire(lease.Phase),
        IssuedAt = Timestamp.FromDateTimeOffset(lease.IssuedAt),
        ExpiresAt = Timestamp.FromDateTimeOffset(lease.ExpiresAt),
        Node = lease.Node,
    };

    private static Phase ToWire(Broker.Core.TaskPhase phase) => phase switch
    {
        Broker.Core.TaskPhase.Planning => Phase.Planning,
        Broker.Core.TaskPhase.Execution => Phase.Execution,
        Broker.Core.TaskPhase.Recovery => Phase.Recovery,
        _ => Phase.Unspecified,
    };
}
