using Broker.Core.Audit;
using Microsoft.Extensions.Logging;

namespace Broker.Core.Policy;

/// <summary>How <see cref="FilePolicyProvider"/> notices edits.</summary>
public sealed class FilePolicyProviderOptions
{
    /// <summary>
    /// How often the file's digest is re-checked regardless of watcher events: watchers miss
    /// events on some filesystems (network shares, some container mounts).
    /// </summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Quiet time after a watcher event before reloading, so a save in several writes is read once.</summary>
    public TimeSpan Debounce { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>When false, the file is read once and only <see cref="FilePolicyProvider.ReloadAsync"/> reloads it.</summary>
    public bool Watch { get; set; } = true;

    /// <summary>
    /// Checks only the host can make (e.g. that the operator IdP is not also an attestation
    /// issuer). A policy that fails one is refused like an invalid file, at start and on every
    /// reload, so an edit cannot undo what start-up enforced. Each problem is one message.
    /// </summary>
    public Func<BrokerPolicy, IEnumerable<string>>? Constraints { get; set; }
}

/// <summary>
/// The policy from a file, hot-reloaded. A valid edit (new digest) replaces <see cref="Current"/>
/// atomically and raises <see cref="Changed"/>; an invalid edit is refused, logged and
/// audited, and the policy in force stays. A new policy is audited before it takes effect, so
/// every digest a token carries has a <c>policy.loaded</c> record.
/// </summary>
public sealed partial class FilePolicyProvider : IPolicyProvider, IDisposable
{
    /// <summary>Audit reason for a refused policy.</summary>
    public const string PolicyInvalidReason = "POLICY_INVALID";

    /// <summary>Audit <see cref="AuditEvent.Detail"/> is cut to this many characters.</summary>
    public const int MaxAuditDetailLength = 1024;

    private const int ErrorsInDetail = 5;

    private readonly string _directory;
    private readonly IAuditSink _audit;
    private readonly TimeProvider _time;
    private readonly ILogger<FilePolicyProvider> _logger;
    private readonly FilePolicyProviderOptions _options;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private FileSystemWatcher? _watcher;
    private ITimer? _pollTimer;
    private ITimer? _debounceTimer;
    private BrokerPolicy? _current;

    // The last refused content (digest, or read error), so polling does not refuse and audit it again and again.
    private string? _lastRefusedKey;
    private volatile bool _disposed;

    // The file as read by the constructor when it could not be put in force; OpenAsync audits and throws it.
    private readonly IReadOnlyList<PolicyError>? _initialErrors;
    private int _opened;

    /// <summary>
    /// Reads and checks the policy now (file I/O only); <see cref="OpenAsync"/> audits it and
    /// starts watching. Until then <see cref="Current"/> is the policy read, or throws
    /// <see cref="PolicyLoadException"/> if it was refused.
    /// </summary>
    public FilePolicyProvider(
        string path,
        IAuditSink audit,
        TimeProvider timeProvider,
        ILogger<FilePolicyProvider> logger,
        FilePolicyProviderOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        PolicyPath = System.IO.Path.GetFullPath(path);
        _directory = System.IO.Path.GetDirectoryName(PolicyPath) ?? System.IO.Path.GetPathRoot(PolicyPath) ?? "/";
        _audit = audit;
        _time = timeProvider;
        _logger = logger;
        _options = options ?? new FilePolicyProviderOptions();

        var result = Constrain(PolicyLoader.LoadFile(PolicyPath));
        if (result.Policy is null)
        {
            _initialErrors = result.Errors;
            return;
        }

        _current = result.Policy;
    }

    /// <summary>
    /// Puts the policy read at construction in force: audits it (<c>policy.loaded</c>) and starts
    /// watching the file. A refused policy is audited (<c>policy.refused</c>) and thrown. Not
    /// audited means not in force: a failing sink throws and the host does not start.
    /// </summary>
    /// <exception cref="PolicyLoadException">The file is missing, invalid or fails a constraint.</exception>
    public async Task OpenAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _opened, 1) == 1)
        {
            return;
        }

        if (_initialErrors is { } errors)
        {
            Log.InitialPolicyRefused(_logger, PolicyPath, errors.Count, FormatErrors(errors, int.MaxValue, "\n"));
            try
            {
                await _audit.AppendAsync(RefusedEvent(digest: null, errors), cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Log.AuditFailed(_logger, ex, PolicyPath, null, "the refusal is only in the log");
            }

            throw new PolicyLoadException(PolicyPath, errors);
        }

        var policy = Current;
        await _audit.AppendAsync(LoadedEvent(policy, previous: null), cancellationToken);
        Log.PolicyLoaded(_logger, PolicyPath, policy.Digest, policy.Agents.Count, TrustSourceCount(policy));

        if (_options.Watch && !_disposed)
        {
            _debounceTimer = _time.CreateTimer(_ => OnTimer(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _pollTimer = _time.CreateTimer(_ => OnTimer(), null, _options.PollInterval, _options.PollInterval);
            _watcher = TryWatch();
        }
    }

    /// <summary>Full path of the policy file.</summary>
    public string PolicyPath { get; }

    public BrokerPolicy Current => Volatile.Read(ref _current) ?? throw new PolicyLoadException(PolicyPath, _initialErrors ?? []);

    /// <summary>
    /// Raised, on the reloading thread, after a new valid policy is in force. Handlers run one
    /// reload at a time and must not wait on <see cref="ReloadAsync"/>.
    /// </summary>
    public event Action<BrokerPolicy>? Changed;

    /// <summary>
    /// Re-reads the file. Returns true when a new policy (different digest) is now in force;
    /// false when the file is unchanged, invalid (refused, logged, audited) or the new policy
    /// could not be audited (it is not put in force; a later check tries again).
    /// </summary>
    public Task<bool> ReloadAsync(CancellationToken cancellationToken = default) =>
        ReloadCoreAsync(skipKnownRefused: false, cancellationToken);

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _watcher?.Dispose();
        _pollTimer?.Dispose();
        _debounceTimer?.Dispose();
    }

    private async Task<bool> ReloadCoreAsync(bool skipKnownRefused, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_disposed)
            {
                return false;
            }

            var current = Current;
            string? digest = null;
            var readable = PolicyLoader.TryReadFile(PolicyPath, out var content, out var readError);
            if (readable)
            {
                digest = PolicyLoader.ComputeDigest(content);
                if (digest == current.Digest)
                {
                    _lastRefusedKey = null;
                    return false;
                }
            }

            var key = digest ?? "unreadable:" + readError;
            if (skipKnownRefused && key == _lastRefusedKey)
            {
                return false;
            }

            var result = readable
                ? Constrain(PolicyLoader.Parse(content, PolicyPath, _directory))
                : new PolicyLoadResult(null, [new PolicyError(PolicyPath, 1, 1, readError)]);

            if (result.Policy is null)
            {
                Log.PolicyRefused(_logger, PolicyPath, digest, result.Errors.Count, current.Digest, FormatErrors(result.Errors, int.MaxValue, "\n"));
                try
                {
                    await _audit.AppendAsync(RefusedEvent(digest, result.Errors), cancellationToken);
                    _lastRefusedKey = key;
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Log.AuditFailed(_logger, ex, PolicyPath, digest, "the refusal is only in the log; it will be retried");
                }

                return false;
            }

            var next = result.Policy;
            try
            {
                await _audit.AppendAsync(LoadedEvent(next, current), cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Log.AuditFailed(_logger, ex, PolicyPath, next.Digest, $"the new policy is not in force; {current.Digest} stays until it can be audited");
                return false;
            }

            Volatile.Write(ref _current, next);
            _lastRefusedKey = null;
            Log.PolicyLoaded(_logger, PolicyPath, next.Digest, next.Agents.Count, TrustSourceCount(next));
            RaiseChanged(next);
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    private void RaiseChanged(BrokerPolicy policy)
    {
        var handlers = Changed;
        if (handlers is null)
        {
            return;
        }

        foreach (var handler in handlers.GetInvocationList().Cast<Action<BrokerPolicy>>())
        {
            try
            {
                handler(policy);
            }
            catch (Exception ex)
            {
                Log.ChangedHandlerFailed(_logger, ex, policy.Digest);
            }
        }
    }

    private FileSystemWatcher? TryWatch()
    {
        try
        {
            // The whole folder, not just the file name: editors save by renaming a temporary file
            // over it, and Kubernetes swaps a '..data' symlink. Every event is only a cue to
            // compare digests.
            var watcher = new FileSystemWatcher(_directory)
            {
                IncludeSubdirectories = false,
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite
                    | NotifyFilters.Size | NotifyFilters.CreationTime,
            };
            watcher.Changed += OnFileEvent;
            watcher.Created += OnFileEvent;
            watcher.Deleted += OnFileEvent;
            watcher.Renamed += OnFileEvent;
            watcher.Error += OnWatcherError;
            watcher.EnableRaisingEvents = true;
            return watcher;
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or PlatformNotSupportedException or UnauthorizedAccessException)
        {
            Log.WatcherFailed(_logger, ex, _directory, _options.PollInterval);
            return null;
        }
    }

    private void OnFileEvent(object sender, FileSystemEventArgs e)
    {
        if (!_disposed)
        {
            try
            {
                _debounceTimer?.Change(_options.Debounce, Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
                // Disposed between the check and the call.
            }
        }
    }

    private void OnWatcherError(object sender, ErrorEventArgs e) =>
        Log.WatcherFailed(_logger, e.GetException(), _directory, _options.PollInterval);

    private void OnTimer()
    {
        if (_disposed)
        {
            return;
        }

        _ = CheckAsync();
    }

    private async Task CheckAsync()
    {
        try
        {
            await ReloadCoreAsync(skipKnownRefused: true, CancellationToken.None);
        }
        catch (Exception ex)
        {
            Log.ReloadFailed(_logger, ex, PolicyPath);
        }
    }

    private AuditEvent LoadedEvent(BrokerPolicy policy, BrokerPolicy? previous) => new()
    {
        EventId = AuditEventTypes.PolicyLoaded.Id,
        Type = AuditEventTypes.PolicyLoaded.Name,
        Time = _time.GetUtcNow(),
        CorrelationId = Guid.NewGuid().ToString(),
        PolicyDigest = policy.Digest,
        Outcome = "success",
        Detail = Bound(
            $"source={PolicyPath}; previous={previous?.Digest ?? "none"}; agents={policy.Agents.Count}; "
            + $"spiffe_trust_domains={policy.Trust.SpiffeDomains.Count}; oidc_issuers={policy.Trust.OidcIssuers.Count}"),
    };

    private AuditEvent RefusedEvent(string? digest, IReadOnlyList<PolicyError> errors) => new()
    {
        EventId = AuditEventTypes.PolicyRefused.Id,
        Type = AuditEventTypes.PolicyRefused.Name,
        Time = _time.GetUtcNow(),
        CorrelationId = Guid.NewGuid().ToString(),
        PolicyDigest = digest,
        Outcome = "failure",
        Reason = PolicyInvalidReason,
        Detail = Bound($"{errors.Count} error(s): {FormatErrors(errors, ErrorsInDetail, "; ")}"),
    };

    private PolicyLoadResult Constrain(PolicyLoadResult result)
    {
        if (result.Policy is not { } policy || _options.Constraints is not { } constraints)
        {
            return result;
        }

        // A constraint is about the whole file, not a line of it.
        var problems = constraints(policy).Select(message => new PolicyError(PolicyPath, 1, 1, message)).ToList();
        return problems.Count == 0 ? result : new PolicyLoadResult(null, problems);
    }

    private static string FormatErrors(IReadOnlyList<PolicyError> errors, int max, string separator)
    {
        var shown = string.Join(separator, errors.Take(max));
        return errors.Count > max ? $"{shown}{separator}... and {errors.Count - max} more" : shown;
    }

    private static string Bound(string text) =>
        text.Length <= MaxAuditDetailLength ? text : string.Concat(text.AsSpan(0, MaxAuditDetailLength - 3), "...");

    private static int TrustSourceCount(BrokerPolicy policy) =>
        policy.Trust.SpiffeDomains.Count + policy.Trust.OidcIssuers.Count;

    /// <summary>Event ids 9000-9099 (policy), matching the audit band.</summary>
    private static partial class Log
    {
        [LoggerMessage(EventId = 9000, EventName = "PolicyLoaded", Level = LogLevel.Information,
            Message = "Policy {Source} is in force, digest {Digest} ({AgentCount} agents, {TrustSourceCount} trust sources)")]
        public static partial void PolicyLoaded(ILogger logger, string source, string digest, int agentCount, int trustSourceCount);

        [LoggerMessage(EventId = 9001, EventName = "PolicyRefused", Level = LogLevel.Error,
            Message = "Policy {Source} (digest {Digest}) was refused with {ErrorCount} error(s); policy {CurrentDigest} stays in force:\n{Errors}")]
        public static partial void PolicyRefused(ILogger logger, string source, string? digest, int errorCount, string currentDigest, string errors);

        [LoggerMessage(EventId = 9002, EventName = "InitialPolicyRefused", Level = LogLevel.Critical,
            Message = "Policy {Source} is invalid ({ErrorCount} error(s)); the broker cannot start:\n{Errors}")]
        public static partial void InitialPolicyRefused(ILogger logger, string source, int errorCount, string errors);

        [LoggerMessage(EventId = 9003, EventName = "PolicyAuditFailed", Level = LogLevel.Error,
            Message = "Could not audit a policy event for {Source} (digest {Digest}); {Consequence}")]
        public static partial void AuditFailed(ILogger logger, Exception exception, string source, string? digest, string consequence);

        [LoggerMessage(EventId = 9004, EventName = "PolicyChangedHandlerFailed", Level = LogLevel.Error,
            Message = "A policy change handler failed for digest {Digest}")]
        public static partial void ChangedHandlerFailed(ILogger logger, Exception exception, string digest);

        [LoggerMessage(EventId = 9005, EventName = "PolicyWatcherFailed", Level = LogLevel.Warning,
            Message = "Watching {Directory} for policy edits failed; edits are still found by polling every {PollInterval}")]
        public static partial void WatcherFailed(ILogger logger, Exception exception, string directory, TimeSpan pollInterval);

        [LoggerMessage(EventId = 9006, EventName = "PolicyReloadFailed", Level = LogLevel.Error,
            Message = "Re-checking policy {Source} failed; the policy in force stays")]
        public static partial void ReloadFailed(ILogger logger, Exception exception, string source);
    }
}
