using System.Text.Json;
using Broker.Console.Tests.Infrastructure;
using Broker.V1;
using Grpc.Core;

namespace Broker.Console.Tests;

/// <summary>Approvers in Chromium: the queue, approve and deny, and the API's own refusals.</summary>
[Collection(ChromiumCollection.Name)]
public sealed class ApprovalPageTests(Chromium chromium) : IAsyncLifetime
{
    private ConsoleWorld _world = null!;

    public async Task InitializeAsync() => _world = await ConsoleWorld.StartAsync();

    public async Task DisposeAsync() => await _world.DisposeAsync();

    [Fact]
    public async Task An_approver_approves_a_waiting_agent_and_its_stream_yields_the_token()
    {
        var pending = await _world.AskAsync("deploy-1", "INC-42: ship the hotfix", "deploy:prod");
        using var wait = _world.Wait(pending.ApprovalId);
        Assert.True(await wait.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Null(wait.ResponseStream.Current.Credential);

        await using var alice = await ConsoleSession.DevSignInAsync(chromium.Browser, _world.Console, "alice", "approver");
        await alice.GotoAsync("/console/approvals");
        var row = alice.Page.Locator($"tr[data-approval='{pending.ApprovalId}']");
        var text = await row.InnerTextAsync();
        Assert.Contains(_world.Agent, text, StringComparison.Ordinal);
        Assert.Contains("deploy-1", text, StringComparison.Ordinal);
        Assert.Contains("execution", text, StringComparison.Ordinal);
        Assert.Contains("deploy:prod", text, StringComparison.Ordinal);
        Assert.Contains("INC-42: ship the hotfix", text, StringComparison.Ordinal);
        Assert.Contains(pending.RequestDigest, text, StringComparison.Ordinal);
        Assert.Contains("now unknown", text, StringComparison.Ordinal);
        Assert.Contains("none yet", text, StringComparison.Ordinal);

        await row.Locator("button.approve").ClickAsync();
        Assert.Contains("quorum reached", await alice.Page.TextContentAsync("#done"), StringComparison.Ordinal);

        IssueCredentialResponse? credential = null;
        while (credential is null && await wait.ResponseStream.MoveNext(CancellationToken.None))
        {
            credential = wait.ResponseStream.Current.Credential;
        }

        Assert.NotNull(credential);
        Assert.Contains("deploy:prod", credential.GrantedScopes);
        Assert.Equal(pending.ApprovalId, credential.ApprovalId);

        // The same record the approval API writes, naming the person; and the console session.
        var audit = (await _world.AuditAsync()).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var approved = Assert.Single(audit, e => e.GetProperty("type").GetString() == "approval.approved" && e.GetProperty("outcome").GetString() == "success");
        Assert.Equal("operator:alice", approved.GetProperty("actor").GetString());
        Assert.Equal(pending.ApprovalId, approved.GetProperty("approval_id").GetString());
        Assert.Contains(audit, e => e.GetProperty("type").GetString() == "console.signed_in" && e.GetProperty("actor").GetString() == "operator:alice");

        // Nothing the agent holds is ever shown to people.
        await alice.GotoAsync("/console/approvals");
        Assert.DoesNotContain(credential.AccessToken, await alice.Page.ContentAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_approver_denies_with_a_reason_and_the_agents_wait_ends()
    {
        var pending = await _world.AskAsync("deploy-2", "", "deploy:prod");
        using var wait = _world.Wait(pending.ApprovalId);

        await using var alice = await ConsoleSession.DevSignInAsync(chromium.Browser, _world.Console, "alice", "approver");
        await alice.GotoAsync("/console/approvals");
        var row = alice.Page.Locator($"tr[data-approval='{pending.ApprovalId}']");
        await row.Locator("input[name=reason]").FillAsync("not during the freeze window");
        await row.Locator("button.deny").ClickAsync();
        Assert.Contains("Denied " + pending.ApprovalId, await alice.Page.TextContentAsync("#done"), StringComparison.Ordinal);

        var ended = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await wait.ResponseStream.MoveNext(CancellationToken.None))
            {
            }
        });
        Assert.Equal("APPROVAL_DENIED", Broker.Client.BrokerRefusal.From(ended).Reason);
    }

    [Fact]
    public async Task The_requesters_owner_and_a_second_vote_are_refused_as_the_API_refuses_them()
    {
        var pending = await _world.AskAsync("pay-1", "refund batch", "payments:write");

        await using var olga = await ConsoleSession.DevSignInAsync(chromium.Browser, _world.Console, ConsoleWorld.Owner, "approver");
        await olga.GotoAsync("/console/approvals");
        var owned = await olga.Page.RunAndWaitForResponseAsync(
            () => olga.Page.Locator($"tr[data-approval='{pending.ApprovalId}'] button.approve").ClickAsync(),
            r => r.Request.Method == "POST");
        Assert.Equal(403, owned.Status);
        Assert.StartsWith("APPROVER_IS_OWNER:", await olga.Page.TextContentAsync("#refusal"), StringComparison.Ordinal);

        await using var ann = await ConsoleSession.DevSignInAsync(chromium.Browser, _world.Console, "ann", "approver");
        await ann.GotoAsync("/console/approvals");
        await ann.Page.Locator($"tr[data-approval='{pending.ApprovalId}'] button.approve").ClickAsync();
        Assert.Contains("waiting for more approvers", await ann.Page.TextContentAsync("#done"), StringComparison.Ordinal);
        var again = await ann.Page.RunAndWaitForResponseAsync(
            () => ann.Page.Locator($"tr[data-approval='{pending.ApprovalId}'] button.approve").ClickAsync(),
            r => r.Request.Method == "POST");
        Assert.Equal(409, again.Status);
        Assert.StartsWith("APPROVAL_ALREADY_GIVEN:", await ann.Page.TextContentAsync("#refusal"), StringComparison.Ordinal);

        var audit = (await _world.AuditAsync()).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Contains(audit, e => e.GetProperty("type").GetString() == "approval.approved" && e.GetProperty("outcome").GetString() == "failure"
            && e.GetProperty("actor").GetString() == "operator:olga" && e.GetProperty("reason").GetString() == "APPROVER_IS_OWNER");
    }
}
