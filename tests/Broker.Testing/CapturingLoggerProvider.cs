using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Broker.Testing;

/// <summary>Keeps every message a host logs (at the levels its filters let through), with its category and any exception.</summary>
public sealed class CapturingLoggerProvider : ILoggerProvider
{
    public ConcurrentQueue<string> Messages { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Capture(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Capture(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            // The structured fields too: a sink that indexes them would store them.
            var fields = state is IEnumerable<KeyValuePair<string, object?>> pairs ? string.Join(' ', pairs.Select(p => $"{p.Key}={p.Value}")) : "";
            owner.Messages.Enqueue($"{category} [{eventId.Id}] {formatter(state, exception)} {fields}" + (exception is null ? "" : " " + exception));
        }
    }
}
