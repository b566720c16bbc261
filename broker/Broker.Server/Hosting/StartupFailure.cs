using System.Net.Sockets;
using Broker.Core.Audit;

namespace Broker.Server.Hosting;

/// <summary>
/// What a person sees when the broker cannot start: one line with a stable id and an exit code
/// from <see cref="BrokerExitCodes"/>, never a stack trace. Failures not known here stay exceptions:
/// their stack trace is what a bug report needs.
/// </summary>
public sealed record StartupFailure(string Message, int ExitCode)
{
    public const string CannotListenId = "BRK1161";

    public static StartupFailure? Describe(Exception exception) => exception switch
    {
        // One problem fits on one line; several are listed under the header.
        BrokerStartupException { Problems.Count: 1 } one => new("Broker cannot start: " + one.Problems[0], BrokerExitCodes.StartupRefused),
        BrokerStartupException many => new(many.Message, BrokerExitCodes.StartupRefused),
        // Every error of the file, as file:line:col: message (a constraint such as BRK1053 is one of them).
        Broker.Core.Policy.PolicyLoadException policy => new(policy.Message, BrokerExitCodes.StartupRefused),
        AuditTamperedException tampered => new(tampered.Message, BrokerExitCodes.AuditTampered),
        AuditFolderLockedException locked => new(locked.Message, BrokerExitCodes.AuditFolderInUse),

        // Kestrel wraps "address in use" in an IOException that names the address; other socket
        // errors (a privileged port, an address this host does not have) arrive bare.
        IOException { InnerException: Microsoft.AspNetCore.Connections.AddressInUseException } busy => new(
            $"{CannotListenId}: {busy.Message.TrimEnd('.')}; another process listens there (in --dev pick others with --grpc-port and --http-port).",
            BrokerExitCodes.CannotListen),
        SocketException socket => new($"{CannotListenId}: cannot listen: {socket.Message} ({socket.SocketErrorCode}).", BrokerExitCodes.CannotListen),
        StackExchange.Redis.RedisConnectionException redis => new(
            $"Broker cannot start: no Redis Sentinel answered ({redis.FailureType}). It will be retried by the supervisor.",
            BrokerExitCodes.SentinelUnreachable),
        _ => null,
    };
}
