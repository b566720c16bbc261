using System.Globalization;
using Broker.Core.Audit;
using Broker.Server.Hosting;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace Broker.Server.OperatorConsole.Pages;

/// <summary>The auditor's page: search this node's audit log (the AuditService's filters) and verify its chain with its checkpoints.</summary>
[Authorize(Policy = ConsoleAuthentication.AuditorPolicy)]
public sealed class AuditModel(ConsoleAuditView view, IOptions<BrokerOptions> options) : ConsolePageModel(options)
{
    public string? Task { get; private set; }

    public string? Agent { get; private set; }

    public string? Event { get; private set; }

    public string? Since { get; private set; }

    public string? Until { get; private set; }

    public int Limit { get; private set; } = 100;

    public IReadOnlyList<AuditLine> Records { get; private set; } = [];

    public AuditVerifyResult? Verification { get; private set; }

    public IReadOnlyList<AuditCheckpoint> Checkpoints { get; private set; } = [];

    public void OnGet(string? task, string? agent, string? @event, string? since, string? until, int? limit, bool verify = false)
    {
        (Task, Agent, Event, Since, Until) = (Blank(task), Blank(agent), Blank(@event), Blank(since), Blank(until));
        Limit = Math.Clamp(limit ?? 100, 1, ConsoleAuditView.MaxRows);
        if (!TryTime(Since, "since", out var from) || !TryTime(Until, "until", out var to))
        {
            return;
        }

        if (from is { } f && to is { } t && t < f)
        {
            Fail("until is before since.");
            return;
        }

        Records = view.Search(new AuditFilter(Agent, Task, null, null, Event, from, to), Limit);
        if (verify)
        {
            (Verification, Checkpoints) = view.Verify();
        }
    }

    private bool TryTime(string? text, string name, out DateTimeOffset? value)
    {
        value = null;
        if (text is null)
        {
            return true;
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
        {
            value = parsed;
            return true;
        }

        Fail($"{name} must be a moment in ISO 8601, e.g. 2026-12-02T08:00:00Z.");
        return false;
    }

    private void Fail(string message)
    {
        Refusal = $"{Broker.Core.Errors.BrokerErrors.SelectorInvalid}: {message}";
        Response.StatusCode = StatusCodes.Status400BadRequest;
    }
}
