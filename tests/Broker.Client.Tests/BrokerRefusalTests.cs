using Broker.Client;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;

namespace Broker.Client.Tests;

public sealed class BrokerRefusalTests
{
    internal static RpcException Refusal(Code code, string message, string? reason = null, IDictionary<string, string>? metadata = null)
    {
        var status = new Google.Rpc.Status { Code = (int)code, Message = message };
        if (reason is not null)
        {
            var info = new ErrorInfo { Reason = reason, Domain = BrokerRefusal.Domain };
            if (metadata is not null)
            {
                info.Metadata.Add(metadata);
            }

            status.Details.Add(Any.Pack(info));
        }

        return status.ToRpcException();
    }

    [Fact]
    public void From_reads_status_reason_message_and_metadata_from_error_info()
    {
        var exception = Refusal(Code.PermissionDenied, "Scopes not allowed in phase planning: deploy:prod", "SCOPE_NOT_ALLOWED",
            new Dictionary<string, string> { ["scopes"] = "deploy:prod", ["phase"] = "planning" });

        var refusal = BrokerRefusal.From(exception);

        Assert.Equal(StatusCode.PermissionDenied, refusal.Status);
        Assert.Equal("SCOPE_NOT_ALLOWED", refusal.Reason);
        Assert.Equal("Scopes not allowed in phase planning: deploy:prod", refusal.Message);
        Assert.Equal("deploy:prod", refusal.Metadata["scopes"]);
        Assert.Equal("planning", refusal.Metadata["phase"]);
        Assert.False(refusal.IsUnavailable);
        Assert.Equal("PermissionDenied SCOPE_NOT_ALLOWED: Scopes not allowed in phase planning: deploy:prod", refusal.ToString());
    }

    [Fact]
    public void From_a_status_without_error_info_has_no_reason_and_no_metadata()
    {
        var refusal = BrokerRefusal.From(new RpcException(new Grpc.Core.Status(StatusCode.Unavailable, "Error connecting to subchannel.")));

        Assert.Equal(StatusCode.Unavailable, refusal.Status);
        Assert.Null(refusal.Reason);
        Assert.Empty(refusal.Metadata);
        Assert.True(refusal.IsUnavailable);
    }

    [Theory]
    [InlineData(StatusCode.Unavailable, "AUDIT_UNAVAILABLE", true)]
    [InlineData(StatusCode.DeadlineExceeded, null, true)]
    [InlineData(StatusCode.Unknown, null, true)]
    [InlineData(StatusCode.Internal, null, true)]
    [InlineData(StatusCode.Unauthenticated, "ATTESTATION_EXPIRED", false)]
    [InlineData(StatusCode.FailedPrecondition, "TASK_ENDED", false)]
    [InlineData(StatusCode.InvalidArgument, null, false)]
    public void Is_unavailable_only_when_the_broker_gave_no_decision(StatusCode status, string? reason, bool unavailable)
    {
        var refusal = new BrokerRefusal(status, reason, "m", new Dictionary<string, string>());

        Assert.Equal(unavailable, refusal.IsUnavailable);
    }

    [Theory]
    [InlineData("RATE_LIMITED", "42", 42)]
    [InlineData("RATE_LIMITED", "soon", null)]
    [InlineData("RATE_LIMITED", "-1", null)]
    [InlineData("WATCH_STREAMS_EXHAUSTED", "42", null)]
    public void Retry_after_is_read_from_a_rate_limited_refusal_only(string reason, string seconds, int? expected)
    {
        var refusal = BrokerRefusal.From(Refusal(Code.ResourceExhausted, "m", reason, new Dictionary<string, string> { ["retry_after_seconds"] = seconds }));

        Assert.Equal(expected is null ? null : TimeSpan.FromSeconds(expected.Value), refusal.RetryAfter);
        Assert.False(refusal.IsUnavailable);
    }
}
