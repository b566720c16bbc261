using Broker.Core.Approvals;
using Broker.Core.Diagnostics;
using Polly;
using Microsoft.Extensions.Http.Resilience;

namespace Broker.Server.Hosting;

/// <summary>
/// How <see cref="ApprovalWebhook"/> posts: the standard resilience pipeline of
/// Microsoft.Extensions.Http.Resilience on its named HttpClient. Transient failures (connection
/// errors, a timed-out attempt, 5xx, 408, 429) are retried with exponential backoff and jitter,
/// a receiver's <c>Retry-After</c> is honoured (up to <see cref="MaxRetryDelay"/>), each attempt
/// has its own timeout and the whole delivery a total one. Any other answer (400, 401, ...) is final.
/// Delays and timeouts run on the host's <see cref="TimeProvider"/>.
/// </summary>
public static partial class ApprovalWebhookDelivery
{
    /// <summary>The first post and up to three retries.</summary>
    public const int MaxAttempts = 4;

    /// <summary>Backoff base: about 1, 2 and 4 s before retries 1 to 3, with jitter.</summary>
    public static readonly TimeSpan FirstRetryDelay = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait before a retry, whatever <c>Retry-After</c> asks.</summary>
    public static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(30);

    public static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(5);

    /// <summary>From the first post to giving up, waits included.</summary>
    public static readonly TimeSpan TotalTimeout = TimeSpan.FromSeconds(90);

    /// <summary>Which notice a request carries, and how many attempts it took, for the logs.</summary>
    internal static readonly HttpRequestOptionsKey<Attempts> AttemptsKey = new("broker.approval_webhook.attempts");

    /// <summary>
    /// The webhook as <see cref="IApprovalNotifier"/> and as the hosted service that sends, with its
    /// HttpClient and pipeline; needs <see cref="BrokerOptions"/>, <see cref="BrokerMetrics"/> and a <see cref="TimeProvider"/>.
    /// </summary>
    public static IServiceCollection AddApprovalWebhook(this IServiceCollection services)
    {
        services.AddHttpClient(nameof(ApprovalWebhook), client => client.Timeout = Timeout.InfiniteTimeSpan)
            .AddStandardResilienceHandler()
            .Configure((options, provider) => Configure(options, provider.GetRequiredService<ILogger<ApprovalWebhook>>()));
        services.AddSingleton<ApprovalWebhook>();
        services.AddSingleton<IApprovalNotifier>(sp => sp.GetRequiredService<ApprovalWebhook>());
        services.AddHostedService(sp => sp.GetRequiredService<ApprovalWebhook>());
        return services;
    }

    private static void Configure(HttpStandardResilienceOptions options, ILogger logger)
    {
        options.AttemptTimeout.Timeout = AttemptTimeout;
        options.TotalRequestTimeout.Timeout = TotalTimeout;
        options.Retry.MaxRetryAttempts = MaxAttempts - 1;
        options.Retry.Delay = FirstRetryDelay;
        options.Retry.MaxDelay = MaxRetryDelay;
        options.Retry.BackoffType = DelayBackoffType.Exponential;
        options.Retry.UseJitter = true;
        options.Retry.ShouldRetryAfterHeader = true;

        // MaxDelay bounds the backoff, not the receiver's Retry-After: cut that too, so one slow
        // receiver holds the node's queue for at most MaxRetryDelay per retry.
        var retryAfter = options.Retry.DelayGenerator;
        options.Retry.DelayGenerator = async arguments =>
            retryAfter is not null && await retryAfter(arguments) is { } asked
                ? (asked > MaxRetryDelay ? MaxRetryDelay : asked)
                : null;
        options.Retry.OnRetry = arguments =>
        {
            var request = arguments.Context.GetRequestMessage();
            if (request is not null && request.Options.TryGetValue(AttemptsKey, out var attempts))
            {
                attempts.Count++;
                if (arguments.Outcome.Result is { } response)
                {
                    Log.Refused(logger, attempts.ApprovalId, (int)response.StatusCode, arguments.RetryDelay);
                }
                else
                {
                    Log.Unreachable(logger, attempts.ApprovalId, arguments.Outcome.Exception?.GetType().Name ?? "unknown", arguments.RetryDelay);
                }
            }

            return ValueTask.CompletedTask;
        };
    }

    /// <summary>Carried on the request: the notice's approval id and the attempts made so far.</summary>
    internal sealed class Attempts(string approvalId)
    {
        public string ApprovalId { get; } = approvalId;

        public int Count { get; set; } = 1;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 7110, Level = LogLevel.Warning, Message = "Approval webhook answered {Status} for {ApprovalId}; retrying in {Delay}")]
        public static partial void Refused(ILogger logger, string approvalId, int status, TimeSpan delay);

        [LoggerMessage(EventId = 7111, Level = LogLevel.Warning, Message = "Approval webhook unreachable for {ApprovalId} ({Error}); retrying in {Delay}")]
        public static partial void Unreachable(ILogger logger, string approvalId, string error, TimeSpan delay);
    }
}
