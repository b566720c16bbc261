using System.Diagnostics;
using Broker.Core.Attestation;
using Broker.Core.Audit;
using Broker.Core.Issuance;
using Broker.Core.State;
using Broker.Redis;
using Grpc.Core;
using Grpc.Core.Interceptors;
using StackExchange.Redis;

namespace Broker.Benchmarks;

/// <summary>
/// Diagnostic (--breakdown): times the stages of each issuance from inside the node by wrapping
/// the attestor, the audit sink and the store and adding a server interceptor. Costs a few
/// timestamps and a lock per stage, so the headline run leaves it off.
/// </summary>
internal sealed class Breakdown
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, List<long>> _samples = new(StringComparer.Ordinal);
    private volatile bool _recording;

    public static readonly string[] Stages = ["server total (interceptor)", "store.RecordIssuance (Redis EVAL)", "audit.Append (write + fsync)", "attestation (proof check)"];

    public void Start()
    {
        lock (_lock)
        {
            _samples.Clear();
        }

        _recording = true;
    }

    public void Stop() => _recording = false;

    public void Add(string stage, long ticks)
    {
        if (!_recording)
        {
            return;
        }

        lock (_lock)
        {
            if (!_samples.TryGetValue(stage, out var list))
            {
                _samples[stage] = list = new List<long>(1 << 16);
            }

            list.Add(ticks);
        }
    }

    /// <summary>(stage, p50 ms, p99 ms, mean ms) for each stage seen in the last window.</summary>
    public IReadOnlyList<(string Stage, double P50, double P99, double Mean)> Summary()
    {
        lock (_lock)
        {
            return Stages.Where(_samples.ContainsKey).Select(stage =>
            {
                var all = _samples[stage].ToArray();
                Array.Sort(all);
                double Ms(long t) => t * 1000.0 / Stopwatch.Frequency;
                return (stage, Ms(all[all.Length / 2]), Ms(all[Math.Max(0, (int)Math.Ceiling(all.Length * 0.99) - 1)]), Ms((long)all.Average()));
            }).ToArray();
        }
    }

    public void Register(IServiceCollection services, bool fileAudit, bool redisStore)
    {
        services.AddSingleton(this);
        if (fileAudit)
        {
            services.AddSingleton<IAuditSink>(sp => new TimedAuditSink(sp.GetRequiredService<FileAuditSink>(), this));
        }

        if (redisStore)
        {
            services.AddSingleton<ICredentialStore>(sp => new TimedStore(
                new RedisCredentialStore(sp.GetRequiredService<IConnectionMultiplexer>(), sp.GetRequiredService<RedisKeys>()), this));
        }

        services.AddSingleton<IWorkloadAttestor>(sp => new TimedAttestor(sp.GetRequiredService<WorkloadAttestor>(), this));
        services.AddSingleton<TimingInterceptor>();
        services.Configure<Grpc.AspNetCore.Server.GrpcServiceOptions>(o => o.Interceptors.Add<TimingInterceptor>());
    }

    private sealed class TimedAuditSink(IAuditSink inner, Breakdown breakdown) : IAuditSink
    {
        public async ValueTask AppendAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
        {
            var start = Stopwatch.GetTimestamp();
            await inner.AppendAsync(auditEvent, cancellationToken);
            breakdown.Add(Stages[2], Stopwatch.GetTimestamp() - start);
        }
    }

    private sealed class TimedStore(ICredentialStore inner, Breakdown breakdown) : ICredentialStore
    {
        public event Action? Interrupted
        {
            add => inner.Interrupted += value;
            remove => inner.Interrupted -= value;
        }

        public async ValueTask<IssuanceOutcome> RecordIssuanceAsync(IssuanceRecord record, CancellationToken cancellationToken)
        {
            var start = Stopwatch.GetTimestamp();
            var outcome = await inner.RecordIssuanceAsync(record, cancellationToken);
            breakdown.Add(Stages[1], Stopwatch.GetTimestamp() - start);
            return outcome;
        }

        public ValueTask<bool> ClaimProofAsync(string proofKey, DateTimeOffset keepUntil, CancellationToken cancellationToken) => inner.ClaimProofAsync(proofKey, keepUntil, cancellationToken);

        public ValueTask<TaskRecord?> GetTaskAsync(string taskId, CancellationToken cancellationToken) => inner.GetTaskAsync(taskId, cancellationToken);

        public ValueTask<EndTaskOutcome> EndTaskAsync(string taskId, string? owner, DateTimeOffset at, TimeSpan retention, CancellationToken cancellationToken) =>
            inner.EndTaskAsync(taskId, owner!, at, retention, cancellationToken);
    }

    private sealed class TimingInterceptor(Breakdown breakdown) : Interceptor
    {
        public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
        {
            var start = Stopwatch.GetTimestamp();
            var response = await continuation(request, context);
            breakdown.Add(Stages[0], Stopwatch.GetTimestamp() - start);
            return response;
        }
    }

    private sealed class TimedAttestor(IWorkloadAttestor inner, Breakdown breakdown) : IWorkloadAttestor
    {
        public async ValueTask<WorkloadIdentity> AttestAsync(AttestationEvidence evidence, CancellationToken cancellationToken)
        {
            var start = Stopwatch.GetTimestamp();
            var identity = await inner.AttestAsync(evidence, cancellationToken);
            breakdown.Add(Stages[3], Stopwatch.GetTimestamp() - start);
            return identity;
        }

        public bool HasValidated(AttestationEvidence evidence) => inner.HasValidated(evidence);
    }
}
