using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Broker.Core;
using Broker.Core.Approvals;
using Broker.Core.Diagnostics;
using Broker.Server.Hosting;
using Broker.Server.Tests.Infrastructure;
using Broker.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Broker.Server.Tests.Approvals;

/// <summary>
/// The webhook's delivery through its resilience pipeline, against a real Kestrel receiver on
/// loopback. The pipeline's waits run on a fake clock the test advances, once it has seen the
/// pipeline start waiting: nothing here sleeps.
/// </summary>
public sealed class ApprovalWebhookDeliveryTests : IAsyncLifetime
{
    // The receiver asks for this; backoff alone would wait about 1, 2 and 4 s (with jitter).
    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(7);

    private readonly FakeTimeProvider _clock = new(DateTimeOffset.Parse("2030-01-01T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private readonly CapturingLoggerProvider _logs = new();
    private readonly string _keyPath = Path.Combine(Directory.CreateTempSubdirectory("broker-webhook-delivery-").FullName, "webhook.key");
    private readonly Dictionary<string, long> _outcomes = [];
    private WebhookReceiver _receiver = null!;
    private TimerWatch _time = null!;
    private ServiceProvider _services = null!;
    private IApprovalNotifier _webhook = null!;
    private MeterListener _meter = null!;

    public async Task InitializeAsync()
    {
        _receiver = await WebhookReceiver.StartAsync();
        await File.WriteAllBytesAsync(_keyPath, System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        _time = new TimerWatch(_clock);
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.AddProvider(_logs).SetMinimumLevel(LogLevel.Debug));
        services.AddMetrics();
        services.AddSingleton<BrokerMetrics>();
        services.AddSingleton<TimeProvider>(_time);
        services.AddSingleton(Options.Create(new BrokerOptions { Approvals = { WebhookUrl = _receiver.Url.ToString(), WebhookKeyPath = _keyPath } }));
        services.AddApprovalWebhook();
        _services = services.BuildServiceProvider();

        // Only this provider's meter: other tests in the process have their own.
        var meters = _services.GetRequiredService<IMeterFactory>();
        _meter = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, meters) && instrument.Name == "broker.approvals.notifications")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        _meter.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "broker.outcome")
                {
                    lock (_outcomes)
                    {
                        _outcomes[(string)tag.Value!] = _outcomes.GetValueOrDefault((string)tag.Value!) + value;
                    }
                }
            }
        });
        _meter.Start();
        _webhook = _services.GetRequiredService<IApprovalNotifier>();
        await ((IHostedService)_webhook).StartAsync(default);
    }

    public async Task DisposeAsync()
    {
        await ((IHostedService)_webhook).StopAsync(default);
        _meter.Dispose();
        await _services.DisposeAsync();
        await _receiver.DisposeAsync();
        Directory.Delete(Path.GetDirectoryName(_keyPath)!, recursive: true);
    }

    [Fact]
    public async Task A_receiver_that_fails_twice_then_succeeds_gets_the_notice_on_the_third_attempt_after_its_Retry_After()
    {
        _receiver.RefuseNext(2, 503, RetryAfter);

        _webhook.Notify(Notice("apr_retried"));
        for (var retry = 1; retry <= 2; retry++)
        {
            await _time.WaitForTimerAsync(RetryAfter, $"retry {retry} waiting its Retry-After");
            _clock.Advance(RetryAfter);
        }

        await Poll.UntilAsync(() => Outcome("delivered") == 1, "the notice counted as delivered");
        Assert.Equal(2, _receiver.Refused);
        var (body, signature) = Assert.Single(_receiver.Received);
        Assert.Contains("\"approval_id\":\"apr_retried\"", body, StringComparison.Ordinal);
        Assert.StartsWith("t=", signature, StringComparison.Ordinal);
        Assert.Equal(0, Outcome("failed"));
        Assert.Equal(2, _logs.Messages.Count(m => m.Contains("[7110]", StringComparison.Ordinal) && m.Contains("apr_retried", StringComparison.Ordinal) && m.Contains("503", StringComparison.Ordinal)));
        Assert.DoesNotContain(_logs.Messages, m => m.Contains("[7112]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_receiver_that_always_fails_gets_four_attempts_then_the_notice_is_given_up_logged_and_counted()
    {
        _receiver.RefuseNext(int.MaxValue, 503, RetryAfter);

        _webhook.Notify(Notice("apr_lost"));
        for (var retry = 1; retry < ApprovalWebhookDelivery.MaxAttempts; retry++)
        {
            await _time.WaitForTimerAsync(RetryAfter, $"retry {retry} waiting its Retry-After");
            _clock.Advance(RetryAfter);
        }

        await Poll.UntilAsync(() => Outcome("failed") == 1, "the notice counted as failed");
        Assert.Equal(ApprovalWebhookDelivery.MaxAttempts, _receiver.Refused);
        Assert.Empty(_receiver.Received);
        Assert.Equal(0, Outcome("delivered"));
        var gaveUp = Assert.Single(_logs.Messages, m => m.Contains("[7112]", StringComparison.Ordinal));
        Assert.Contains("apr_lost after 4 attempt(s), last 503", gaveUp, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_Retry_After_longer_than_the_longest_retry_wait_is_cut_to_it()
    {
        _receiver.RefuseNext(1, 429, TimeSpan.FromMinutes(10));

        _webhook.Notify(Notice("apr_slow_down"));
        await _time.WaitForTimerAsync(ApprovalWebhookDelivery.MaxRetryDelay, "the retry waiting at most the longest retry wait");
        _clock.Advance(ApprovalWebhookDelivery.MaxRetryDelay);

        await Poll.UntilAsync(() => Outcome("delivered") == 1, "the notice counted as delivered");
        Assert.Equal(1, _receiver.Refused);
        Assert.Single(_receiver.Received);
    }

    [Fact]
    public async Task An_answer_that_is_not_transient_is_not_retried()
    {
        _receiver.RefuseNext(int.MaxValue, 400);

        _webhook.Notify(Notice("apr_bad_request"));

        await Poll.UntilAsync(() => Outcome("failed") == 1, "the notice counted as failed");
        Assert.Equal(1, _receiver.Refused);
        Assert.Contains(_logs.Messages, m => m.Contains("[7112]", StringComparison.Ordinal) && m.Contains("after 1 attempt(s), last 400", StringComparison.Ordinal));
        Assert.DoesNotContain(_logs.Messages, m => m.Contains("[7110]", StringComparison.Ordinal));
    }

    private long Outcome(string outcome)
    {
        lock (_outcomes)
        {
            return _outcomes.GetValueOrDefault(outcome);
        }
    }

    private ApprovalNotice Notice(string id)
    {
        var now = _clock.GetUtcNow();
        var request = new ApprovalRequest(
            id, "sha256:00", "spiffe://example.org/agents/deployer", "T-1", TaskPhase.Execution, ["deploy:prod"], "https://api.example.org",
            300, "low", "hotfix", null, "olga", "sha256:11", now, now.AddMinutes(15), [new ApprovalGate(["deploy:prod"], ["approver"], 1)]);
        return new ApprovalNotice("opened", request, "spiffe://example.org/agents/deployer", now);
    }

    /// <summary>The fake clock, telling the test each time a timer is created and for how long.</summary>
    private sealed class TimerWatch(FakeTimeProvider clock) : TimeProvider
    {
        private readonly Channel<TimeSpan> _created = Channel.CreateUnbounded<TimeSpan>();

        public override TimeZoneInfo LocalTimeZone => clock.LocalTimeZone;

        public override long TimestampFrequency => clock.TimestampFrequency;

        public override DateTimeOffset GetUtcNow() => clock.GetUtcNow();

        public override long GetTimestamp() => clock.GetTimestamp();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = clock.CreateTimer(callback, state, dueTime, period);
            _created.Writer.TryWrite(dueTime);
            return timer;
        }

        /// <summary>Until a timer of <paramref name="dueTime"/> exists (bounded on the real clock).</summary>
        public async Task WaitForTimerAsync(TimeSpan dueTime, string what)
        {
            using var bound = new CancellationTokenSource(Poll.DefaultBound);
            try
            {
                while (await _created.Reader.ReadAsync(bound.Token) != dueTime)
                {
                }
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no {what} within {Poll.DefaultBound}");
            }
        }
    }
}
