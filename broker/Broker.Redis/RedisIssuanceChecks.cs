using Broker.Core;
using Broker.Core.Issuance;
using StackExchange.Redis;

namespace Broker.Redis;

/// <summary>
/// The read half of the issuance script, shared by concurrent issuances: every issuance that
/// arrives while a check is in flight joins the next one, which is sent as soon as the one in
/// flight returns, so a node under load pays one read-only script per batch instead of one
/// round trip per token. A batch is only ever sent after each of its issuances started, so each
/// sees the state as of a moment after it began, exactly as its own script would: an emptied
/// Redis refuses the first issuance that starts after the loss, and a stopped Redis fails it at
/// once. An issuance that would write (a new task, a phase move, retention running low) gets
/// <see cref="CheckResult.NeedsWrite"/> and runs the full script, which checks everything again
/// atomically with its writes.
/// </summary>
internal sealed class RedisIssuanceChecks
{
    /// <summary>Most issuances checked by one script (bounds its argument list and its time on Redis's one thread).</summary>
    public const int MaxBatch = 128;

    // KEYS[1]: the revocation epoch; KEYS[2..]: the tasks. ARGV, four per task: owner, phase,
    // '1' when delegated (the phase is left alone), the retention threshold in ms. Returns a flat
    // list of {code, phase} per task: 0 nothing to write, 1 ended, 2 owned by another workload,
    // 3 needs a write, 4 phase change not confirmed; or {5} alone when the epoch is missing.
    // Reads only: Redis appends nothing to its AOF and replicates nothing for it.
    private const string CheckScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return {5} end
        local out = {}
        for i = 2, #KEYS do
          local a = (i - 2) * 4
          local task = redis.call('HMGET', KEYS[i], 'owner', 'ended', 'phase')
          local code, phase = 3, ''
          if task[1] then
            phase = task[3] or ''
            if task[2] then code = 1
            elseif task[1] ~= ARGV[a + 1] then code = 2
            elseif task[3] ~= ARGV[a + 2] and ARGV[a + 3] ~= '1' then code = 4
            elseif redis.call('PEXPIRETIME', KEYS[i]) >= tonumber(ARGV[a + 4]) then code = 0 end
          end
          out[#out + 1] = code
          out[#out + 1] = phase
        end
        return out
        """;

    private readonly IConnectionMultiplexer _redis;
    private readonly RedisKeys _keys;
    private readonly object _gate = new();
    private List<Pending>? _next;
    private bool _inFlight;

    public RedisIssuanceChecks(IConnectionMultiplexer redis, RedisKeys keys)
    {
        _redis = redis;
        _keys = keys;
    }

    public enum CheckResult
    {
        Unchanged = 0,
        TaskEnded = 1,
        TaskNotOwned = 2,
        NeedsWrite = 3,
        PhaseChangePending = 4,
        EpochMissing = 5,
    }

    /// <summary>Checks one issuance in the next batch; the phase is the task's as read (empty for a new task).</summary>
    public Task<(CheckResult Result, string Phase)> CheckAsync(IssuanceRecord record)
    {
        var pending = new Pending(record);
        List<Pending>? send = null;
        lock (_gate)
        {
            (_next ??= new List<Pending>()).Add(pending);
            if (!_inFlight)
            {
                _inFlight = true;
                send = _next;
                _next = null;
            }
        }

        if (send is not null)
        {
            _ = RunAsync(send);
        }

        return pending.Done.Task;
    }

    private async Task RunAsync(List<Pending>? batch)
    {
        while (batch is not null)
        {
            for (var start = 0; start < batch.Count; start += MaxBatch)
            {
                await CheckBatchAsync(batch, start, Math.Min(MaxBatch, batch.Count - start));
            }

            lock (_gate)
            {
                batch = _next;
                _next = null;
                _inFlight = batch is not null;
            }
        }
    }

    private async Task CheckBatchAsync(List<Pending> batch, int start, int count)
    {
        // Everything inside the try: a batch that fails in any way fails its issuances and lets the
        // next batch start, so no failure can leave later issuances waiting on a batch never sent.
        try
        {
            var keys = new RedisKey[count + 1];
            var values = new RedisValue[count * 4];
            keys[0] = _keys.RevocationEpoch;
            for (var i = 0; i < count; i++)
            {
                var record = batch[start + i].Record;
                keys[i + 1] = _keys.Task(record.TaskId);
                values[i * 4] = record.Subject;
                values[(i * 4) + 1] = record.Phase.ToWire();
                values[(i * 4) + 2] = record.Delegated ? "1" : "0";
                values[(i * 4) + 3] = RedisCredentialStore.RetentionThreshold(record);
            }

            var results = (RedisResult[])(await _redis.GetDatabase().ScriptEvaluateAsync(CheckScript, keys, values))!;
            for (var i = 0; i < count; i++)
            {
                var outcome = results.Length == 1
                    ? (CheckResult.EpochMissing, "")
                    : ((CheckResult)(int)results[i * 2], results[(i * 2) + 1].ToString());
                batch[start + i].Done.TrySetResult(outcome);
            }
        }
        catch (Exception ex)
        {
            // Each waiting issuance fails as its own script call would have; the next batch starts afresh.
            for (var i = 0; i < count; i++)
            {
                batch[start + i].Done.TrySetException(ex);
            }
        }
    }

    private sealed record Pending(IssuanceRecord Record)
    {
        public TaskCompletionSource<(CheckResult Result, string Phase)> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
