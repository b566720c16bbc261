using System.Net;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Broker.V1;

namespace Broker.Server.Tests.OAuth;

/// <summary>Gated scopes at the token endpoint: pending with the approval id and digest, polled the CIBA/device-flow way, issued once.</summary>
public sealed class ApprovalPollingTests : IAsyncLifetime
{
    private OAuthScenario _oauth = null!;

    private BrokerScenario Broker => _oauth.Broker;

    private ApprovalAdminService.ApprovalAdminServiceClient Approvals => new(Broker.Channel);

    public async Task InitializeAsync() => _oauth = await OAuthScenario.StartAsync(settings: new Dictionary<string, string?> { ["Broker:OAuth:PollInterval"] = "00:00:01" });

    public async Task DisposeAsync() => await _oauth.DisposeAsync();

    private Dictionary<string, string?> Gated(string task) => _oauth.Exchange(task: task, phase: "execution", scope: "repo:read deploy:prod");

    [Fact]
    public async Task Gated_scope_is_pending_then_polled_then_issued_once_after_approval()
    {
        var form = Gated("gated-1");
        form["authorization_details"] = OAuthScenario.Details("gated-1", "execution", "release 1.4");

        var pending = await _oauth.TokenAsync(form);

        Assert.Equal(HttpStatusCode.BadRequest, pending.Status);
        Assert.Equal(("authorization_pending", "APPROVAL_PENDING"), (pending.Error, pending.Reason));
        var approvalId = pending["auth_req_id"]!;
        Assert.StartsWith("apr_", approvalId);
        Assert.StartsWith("sha256:", pending["approval_digest"]);
        Assert.Equal(1, pending.Body.GetProperty("interval").GetInt32());
        Assert.True(pending.Body.GetProperty("expires_in").GetInt64() > 0);
        var info = await Approvals.GetApprovalAsync(new GetApprovalRequest { ApprovalId = approvalId }, Broker.As("ann", "approver"));
        Assert.Equal(pending["approval_digest"], info.RequestDigest);

        var poll = PollForm(approvalId);
        var beforeApproval = await PollPastSlowDownAsync(poll);
        Assert.Equal(("authorization_pending", "APPROVAL_PENDING"), (beforeApproval.Error, beforeApproval.Reason));

        await Approvals.ApproveAsync(new ApproveRequest { ApprovalId = approvalId }, Broker.As("ann", "approver"));
        var issued = await PollPastSlowDownAsync(poll);
        var again = await PollPastSlowDownAsync(poll);

        Assert.Equal(HttpStatusCode.OK, issued.Status);
        Assert.Equal(["deploy:prod", "repo:read"], issued["scope"]!.Split(' ').Order(StringComparer.Ordinal));
        Assert.Equal(approvalId, issued["approval_id"]);
        Assert.Equal("gated-1", issued["task_id"]);
        Assert.Equal("execution", issued["phase"]);
        Assert.Equal("release 1.4", issued.Body.GetProperty("authorization_details")[0].GetProperty("justification").GetString());
        Assert.Equal(approvalId, (string?)TokenForger.PayloadOf(issued["access_token"]!)["approval_id"]);
        Assert.Equal(("invalid_grant", "APPROVAL_CONSUMED"), (again.Error, again.Reason));
    }

    [Fact]
    public async Task A_denied_request_polls_access_denied_and_another_workload_cannot_poll_it()
    {
        var approvalId = (await _oauth.TokenAsync(Gated("gated-2")))["auth_req_id"]!;
        var stranger = await PollPastSlowDownAsync(PollForm(approvalId, Broker.Svid("/agents/other")));
        await Approvals.DenyAsync(new DenyRequest { ApprovalId = approvalId, Reason = "not today" }, Broker.As("ann", "approver"));
        var denied = await PollPastSlowDownAsync(PollForm(approvalId));

        Assert.Equal(("invalid_grant", "APPROVAL_NOT_YOURS"), (stranger.Error, stranger.Reason));
        Assert.Equal(("access_denied", "APPROVAL_DENIED"), (denied.Error, denied.Reason));
    }

    [Fact]
    public async Task An_unknown_or_malformed_approval_id_is_an_invalid_grant()
    {
        var unknown = await _oauth.TokenAsync(PollForm("apr_" + new string('0', 32)));
        var malformed = await _oauth.TokenAsync(PollForm("not-an-id"));

        Assert.Equal("invalid_grant", unknown.Error);
        Assert.Equal("APPROVAL_NOT_FOUND", unknown.Reason);
        Assert.Equal(("invalid_grant", "APPROVAL_ID_INVALID"), (malformed.Error, malformed.Reason));
    }

    private Dictionary<string, string?> PollForm(string approvalId, string? svid = null) => new()
    {
        ["grant_type"] = OAuthScenario.JwtBearer,
        ["assertion"] = svid ?? Broker.Svid(),
        ["auth_req_id"] = approvalId,
    };

    /// <summary>Polls as a well-behaved client does: on slow_down, waits the interval it was given and asks again.</summary>
    private async Task<OAuthAnswer> PollPastSlowDownAsync(Dictionary<string, string?> form)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            var answer = await _oauth.TokenAsync(form);
            if (answer.Error != "slow_down")
            {
                return answer;
            }

            Assert.Equal("APPROVAL_POLLED_TOO_FAST", answer.Reason);
            await Task.Delay(TimeSpan.FromSeconds(answer.Body.GetProperty("interval").GetInt32()), deadline.Token);
        }
    }
}

/// <summary>A poll sooner than the interval is told to slow down (a long interval keeps this exact on a busy machine).</summary>
public sealed class SlowDownTests : IAsyncLifetime
{
    private OAuthScenario _oauth = null!;

    public async Task InitializeAsync() => _oauth = await OAuthScenario.StartAsync(settings: new Dictionary<string, string?> { ["Broker:OAuth:PollInterval"] = "00:01:00" });

    public async Task DisposeAsync() => await _oauth.DisposeAsync();

    [Fact]
    public async Task Polling_sooner_than_the_interval_answers_slow_down_with_the_interval()
    {
        var pending = await _oauth.TokenAsync(_oauth.Exchange(task: "gated-slow", phase: "execution", scope: "deploy:prod"));

        var poll = await _oauth.TokenAsync(new Dictionary<string, string?>
        {
            ["grant_type"] = OAuthScenario.JwtBearer,
            ["assertion"] = _oauth.Broker.Svid(),
            ["auth_req_id"] = pending["auth_req_id"],
        });

        Assert.Equal(60, pending.Body.GetProperty("interval").GetInt32());
        Assert.Equal(HttpStatusCode.BadRequest, poll.Status);
        Assert.Equal(("slow_down", "APPROVAL_POLLED_TOO_FAST"), (poll.Error, poll.Reason));
        Assert.Equal(60, poll.Body.GetProperty("interval").GetInt32());
    }
}
