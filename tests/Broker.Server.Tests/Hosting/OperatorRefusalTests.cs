using Broker.Client;
using Broker.Server.Tests.Infrastructure;
using Broker.V1;
using Grpc.Core;

namespace Broker.Server.Tests.Hosting;

/// <summary>Admin calls refused for the caller's identity or role carry an ErrorInfo reason, like every other refusal.</summary>
public sealed class OperatorRefusalTests : IAsyncLifetime
{
    private BrokerScenario _broker = null!;

    public async Task InitializeAsync() => _broker = await BrokerScenario.StartAsync();

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task A_missing_role_is_permission_denied_with_a_reason_naming_the_role_and_is_audited()
    {
        var refusal = await RefusedAsync(_broker.As("bob", "auditor"));

        Assert.Equal(StatusCode.PermissionDenied, refusal.Status);
        Assert.Equal("OPERATOR_ROLE_MISSING", refusal.Reason);
        Assert.Equal("responder", refusal.Metadata["required_roles"]);
        Assert.Contains(await _broker.AuditLinesAsync(), l => l.Contains("\"operator.authentication_failed\"", StringComparison.Ordinal) && l.Contains("ROLE_MISSING", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("none")]
    [InlineData("garbage")]
    public async Task No_valid_operator_token_is_unauthenticated_with_a_reason(string kind)
    {
        var headers = kind == "none" ? new Metadata() : new Metadata { { "authorization", "Bearer not.a.token" } };

        var refusal = await RefusedAsync(headers);

        Assert.Equal(StatusCode.Unauthenticated, refusal.Status);
        Assert.Equal("OPERATOR_UNAUTHENTICATED", refusal.Reason);
    }

    private async Task<BrokerRefusal> RefusedAsync(Metadata headers)
    {
        var request = new RevokeRequest { Reason = "test", Selectors = { new Broker.V1.RevocationSelector { TaskId = "t" } } };
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await _broker.Admin.RevokeAsync(request, headers));
        return BrokerRefusal.From(ex);
    }
}
