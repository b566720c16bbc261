using Broker.Core.Revocation;
using Broker.Core.Risk;
using Broker.Revocation;
using Broker.Server.Hosting;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Broker.Server.OperatorConsole.Pages;

/// <summary>
/// The responder's page: revoke (reviewed, then confirmed), freeze and unfreeze through
/// <see cref="Revoker"/>; the revocations in force; an agent's or a task's current risk and
/// live tokens. Auditors may look (as <c>ListRevocations</c> and <c>GetRisk</c> allow them);
/// only responders act.
/// </summary>
[Authorize(Policy = ConsoleAuthentication.ResponderOrAuditorPolicy)]
public sealed class RespondModel(Revoker revoker, RevocationFeed feed, RiskService risk, LiveTokens live, IOptions<BrokerOptions> options) : ConsolePageModel(options)
{
    public const int RevocationRows = 200;

    [BindProperty]
    public RevokeForm Revoke { get; set; } = new();

    /// <summary>Set after "Review": the selector awaiting confirmation.</summary>
    public RevocationSelector? Reviewing { get; private set; }

    public IReadOnlyList<LiveToken> ReviewTokens { get; private set; } = [];

    [BindProperty(SupportsGet = true)]
    public string? Agent { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Task { get; set; }

    public RiskState? AgentRisk { get; private set; }

    public RiskState? TaskRisk { get; private set; }

    public IReadOnlyList<LiveToken> Tokens { get; private set; } = [];

    public IReadOnlyList<RevocationEntry> Revocations { get; private set; } = [];

    public IssuanceFreeze? Freeze { get; private set; }

    public bool CanAct => HasRole(OperatorRoles.Responder);

    public async Task OnGetAsync() => await LoadAsync();

    /// <summary>Step one: show what the selector names (and the live tokens it would end); nothing is revoked yet.</summary>
    public async Task<IActionResult> OnPostReviewAsync()
    {
        if (!CanAct)
        {
            return await RefuseRoleAsync();
        }

        await TryAsync(() =>
        {
            Reviewing = Revoke.ToSelector();
            if (string.IsNullOrWhiteSpace(Revoke.Reason))
            {
                Reviewing = null;
                throw Broker.Core.Errors.BrokerErrors.InvalidArgument(Broker.Core.Errors.BrokerErrors.ReasonRequired, "A reason is required; it is recorded with the revocation.");
            }

            ReviewTokens = Reviewing.Kind switch
            {
                RevocationKind.Task or RevocationKind.TaskPhase => live.For(null, Reviewing.Value).Where(t => Reviewing.Phase is null || t.Phase == Reviewing.Phase).ToList(),
                RevocationKind.Agent or RevocationKind.AgentIssuedBefore => live.For(Reviewing.Value, null),
                _ => [],
            };
            return System.Threading.Tasks.Task.CompletedTask;
        });
        await LoadAsync();
        return Page();
    }

    /// <summary>Step two: the confirmed revocation, through the same service and audit as the API's Revoke.</summary>
    public async Task<IActionResult> OnPostRevokeAsync()
    {
        if (!CanAct)
        {
            return await RefuseRoleAsync();
        }

        IReadOnlyList<RevocationEntry> entries = [];
        if (await TryAsync(async () => entries = await revoker.RevokeAsync([Revoke.ToSelector()], Actor, Revoke.Reason, CallContext, HttpContext.RequestAborted)))
        {
            Done = "Revoked: " + string.Join("; ", entries.Select(e => $"{e.Selector} ({e.Id})")) + ". Every node and subscribed resource server refuses its tokens.";
            Revoke = new RevokeForm();
        }

        await LoadAsync();
        return Page();
    }

    public async Task<IActionResult> OnPostFreezeAsync(string? reason) => await SetFreezeAsync(true, reason);

    public async Task<IActionResult> OnPostUnfreezeAsync(string? reason) => await SetFreezeAsync(false, reason);

    private async Task<IActionResult> SetFreezeAsync(bool freeze, string? reason)
    {
        if (!CanAct)
        {
            return await RefuseRoleAsync();
        }

        if (await TryAsync(async () => await revoker.SetFreezeAsync(freeze, Actor, reason, CallContext, HttpContext.RequestAborted)))
        {
            Done = freeze ? "Issuance frozen on every node." : "Issuance unfrozen.";
        }

        await LoadAsync();
        return Page();
    }

    /// <summary>An auditor posting a responder action: refused and audited as the API refuses a token without the role.</summary>
    private async Task<IActionResult> RefuseRoleAsync()
    {
        await ConsoleAudit.AuthenticationFailedAsync(HttpContext, "ROLE_MISSING");
        return Redirect(ConsolePaths.Denied);
    }

    private async Task LoadAsync()
    {
        Freeze = feed.Freeze;
        Revocations = feed.LiveEntries().Reverse().Take(RevocationRows).ToList();
        Agent = Blank(Agent);
        Task = Blank(Task);
        if (Agent is null && Task is null)
        {
            return;
        }

        await TryAsync(async () =>
        {
            AgentRisk = Agent is null ? null : await risk.GetAsync(RiskSubject.ForAgent(Agent), HttpContext.RequestAborted);
            TaskRisk = Task is null ? null : await risk.GetAsync(RiskSubject.ForTask(Task), HttpContext.RequestAborted);
            Tokens = live.For(Agent, Task);
        });
    }
}
