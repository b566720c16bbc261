using Microsoft.Extensions.Logging;

namespace Broker.Core.Attestation.Internal;

/// <summary>Attestation log events (ids 2100-2199). Never a token or key: only which trust source.</summary>
internal static partial class AttestationLog
{
    [LoggerMessage(EventId = 2101, Level = LogLevel.Information, Message = "Loaded {Source}")]
    public static partial void BundleLoaded(ILogger logger, string source);

    [LoggerMessage(EventId = 2102, Level = LogLevel.Warning, Message = "Refreshing {Source} failed; keeping the last good copy")]
    public static partial void BundleRefreshFailed(ILogger logger, string source, Exception exception);

    [LoggerMessage(EventId = 2103, Level = LogLevel.Error, Message = "Loading {Source} failed; proofs it would vouch for are refused until it loads")]
    public static partial void BundleUnavailable(ILogger logger, string source, Exception exception);

    [LoggerMessage(EventId = 2104, Level = LogLevel.Information, Message = "Trust sources changed; validated-proof caches cleared")]
    public static partial void TrustChanged(ILogger logger);
}
