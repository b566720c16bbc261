using Broker.Core.Approvals;
using Broker.Core.Errors;
using Microsoft.Extensions.Options;

namespace Broker.Server.Hosting;

/// <summary>
/// Every <see cref="ApprovalSettings.SweepInterval"/>: marks (and audits) approval requests that
/// expired while nobody looked at them, then counts the fleet's pending requests for the
/// <c>broker.approvals.pending</c> gauge, so a scrape never waits on Redis.
/// </summary>
internal sealed partial class ApprovalSweeper(ApprovalService approvals, IOptions<BrokerOptions> options, ILogger<ApprovalSweeper> logger) : BackgroundService
{
    /// <summary>More than this many requests per pass are left for the next pass; the gauge then reads this many.</summary>
    private const int Limit = 1_000;

    private long _pending = -1;

    /// <summary>The last count read, or null while it cannot be read.</summary>
    public long? Pending => Interlocked.Read(ref _pending) is var value and >= 0 ? value : null;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.Approvals.SweepInterval);
        do
        {
            try
            {
                await approvals.SweepLapsedAsync(Limit, stoppingToken);
                var pending = await approvals.ListAsync(Limit, stoppingToken);
                Interlocked.Exchange(ref _pending, pending.Count);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                // Unknown is reported as absent, not as zero; the next pass tries again. Nothing
                // here may stop the host.
                Interlocked.Exchange(ref _pending, -1);
                Log.SweepFailed(logger, ex is BrokerException broker ? broker.Reason : ex.GetType().Name, ex is BrokerException ? null : ex);
            }
        }
        while (await NextTickAsync(timer, stoppingToken));
    }

    // Stopping is not a failure: when a node is refused at start (a busy port) the host cancels
    // this loop without a Stop call and would otherwise log the cancellation as a crash.
    private static async Task<bool> NextTickAsync(PeriodicTimer timer, CancellationToken stoppingToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 7100, Level = LogLevel.Warning, Message = "Approval sweep failed: {Reason}; retrying next pass")]
        public static partial void SweepFailed(ILogger logger, string reason, Exception? exception);
    }
}
