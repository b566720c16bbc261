using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using Broker.Core;
using Broker.Core.Approvals;
using Broker.Core.Diagnostics;
using Microsoft.Extensions.Options;

namespace Broker.Server.Hosting;

/// <summary>
/// Posts each approval move to a configured URL (a chat bot, a ticketing hook) as signed JSON,
/// so approvers hear about a pending request without polling. Queued and sent in the
/// background, retried as <see cref="ApprovalWebhookDelivery"/> says: it never slows or fails
/// issuance, and what it cannot deliver is dropped, logged and counted (the audit log remains the record). The body names ids,
/// scopes and the agent's justification; never a token, a proof or a key.
/// </summary>
/// <remarks>
/// Signature: header <c>Broker-Signature: t=&lt;unix seconds&gt;,v1=&lt;hex HMAC-SHA256(key, t + "." + body)&gt;</c>
/// with the shared key from <see cref="ApprovalSettings.WebhookKeyPath"/>. Receivers recompute
/// it over the raw body and refuse stale timestamps (docs/approvals.md).
/// </remarks>
internal sealed partial class ApprovalWebhook : BackgroundService, IApprovalNotifier
{
    public const string SignatureHeader = "Broker-Signature";

    private const int QueueLimit = 1_000;

    private readonly Channel<ApprovalNotice> _queue = Channel.CreateBounded<ApprovalNotice>(new BoundedChannelOptions(QueueLimit) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });
    private readonly HttpClient _http;
    private readonly Uri _url;
    private readonly byte[] _key;
    private readonly BrokerMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger<ApprovalWebhook> _logger;

    public ApprovalWebhook(IHttpClientFactory http, IOptions<BrokerOptions> options, BrokerMetrics metrics, TimeProvider time, ILogger<ApprovalWebhook> logger)
    {
        var settings = options.Value.Approvals;
        _http = http.CreateClient(nameof(ApprovalWebhook));
        _url = new Uri(settings.WebhookUrl);
        _key = File.ReadAllBytes(settings.WebhookKeyPath);
        _metrics = metrics;
        _time = time;
        _logger = logger;
    }

    public void Notify(ApprovalNotice notice)
    {
        if (!_queue.Writer.TryWrite(notice))
        {
            _metrics.ApprovalNotification("dropped");
            Log.Dropped(_logger, notice.Request.Id, notice.Transition);
        }
    }

    /// <summary>The value of <see cref="SignatureHeader"/> for <paramref name="body"/> sent at <paramref name="unixSeconds"/>.</summary>
    public static string Sign(byte[] key, long unixSeconds, byte[] body)
    {
        var stamp = Encoding.ASCII.GetBytes(unixSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture) + ".");
        var signed = new byte[stamp.Length + body.Length];
        stamp.CopyTo(signed, 0);
        body.CopyTo(signed, stamp.Length);
        return $"t={unixSeconds},v1={Convert.ToHexStringLower(HMACSHA256.HashData(key, signed))}";
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var notice in _queue.Reader.ReadAllAsync(stoppingToken))
            {
                await DeliverAsync(notice, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping is not a failure: when a node is refused at start (a busy port) the host
            // cancels this loop without a Stop call and would otherwise log the cancellation as a crash.
        }
    }

    private async Task DeliverAsync(ApprovalNotice notice, CancellationToken stoppingToken)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(Payload.From(notice), WebhookJson.Default.Payload);
        using var request = new HttpRequestMessage(HttpMethod.Post, _url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.TryAddWithoutValidation(SignatureHeader, Sign(_key, _time.GetUtcNow().ToUnixTimeSeconds(), body));
        var attempts = new ApprovalWebhookDelivery.Attempts(notice.Request.Id);
        request.Options.Set(ApprovalWebhookDelivery.AttemptsKey, attempts);
        string? failure;
        try
        {
            // Retries, backoff and timeouts are the client's resilience pipeline (ApprovalWebhookDelivery).
            using var response = await _http.SendAsync(request, stoppingToken);
            failure = response.IsSuccessStatusCode ? null : ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is HttpRequestException or Polly.ExecutionRejectedException || (ex is OperationCanceledException && !stoppingToken.IsCancellationRequested))
        {
            failure = ex.GetType().Name;
        }

        // Logged before it is counted, so whoever watches the count finds the log line there.
        if (failure is not null)
        {
            Log.GaveUp(_logger, notice.Request.Id, notice.Transition, attempts.Count, failure);
        }

        _metrics.ApprovalNotification(failure is null ? "delivered" : "failed");
    }

    internal sealed record Payload(
        [property: JsonPropertyName("type")] string Type,
        [property: JsonPropertyName("approval_id")] string ApprovalId,
        [property: JsonPropertyName("time")] DateTimeOffset Time,
        [property: JsonPropertyName("actor")] string? Actor,
        [property: JsonPropertyName("agent")] string Agent,
        [property: JsonPropertyName("task_id")] string TaskId,
        [property: JsonPropertyName("phase")] string Phase,
        [property: JsonPropertyName("scopes")] IReadOnlyList<string> Scopes,
        [property: JsonPropertyName("audience")] string Audience,
        [property: JsonPropertyName("risk")] string Risk,
        [property: JsonPropertyName("justification")] string? Justification,
        [property: JsonPropertyName("owner")] string? Owner,
        [property: JsonPropertyName("request_digest")] string RequestDigest,
        [property: JsonPropertyName("expires_at")] DateTimeOffset ExpiresAt,
        [property: JsonPropertyName("approver_groups")] IReadOnlyList<string> ApproverGroups)
    {
        public static Payload From(ApprovalNotice notice) => new(
            "approval." + notice.Transition,
            notice.Request.Id,
            notice.At,
            notice.Actor,
            notice.Request.Agent,
            notice.Request.TaskId,
            notice.Request.Phase.ToWire(),
            notice.Request.Scopes,
            notice.Request.Audience,
            notice.Request.Risk,
            notice.Request.Justification,
            notice.Request.Owner,
            notice.Request.Digest,
            notice.Request.ExpiresAt,
            [.. notice.Request.Gates.SelectMany(g => g.Approvers).Distinct(StringComparer.Ordinal)]);
    }

    private static partial class Log
    {
        // 7110 and 7111 (an attempt that will be retried) are ApprovalWebhookDelivery's.
        [LoggerMessage(EventId = 7112, Level = LogLevel.Error, Message = "Approval webhook: gave up on {Transition} of {ApprovalId} after {Attempts} attempt(s), last {Failure} (the audit log has it)")]
        public static partial void GaveUp(ILogger logger, string approvalId, string transition, int attempts, string failure);

        [LoggerMessage(EventId = 7113, Level = LogLevel.Error, Message = "Approval webhook queue full: {Transition} of {ApprovalId} not sent (the audit log has it)")]
        public static partial void Dropped(ILogger logger, string approvalId, string transition);
    }
}

[JsonSerializable(typeof(ApprovalWebhook.Payload))]
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
internal sealed partial class WebhookJson : JsonSerializerContext;
