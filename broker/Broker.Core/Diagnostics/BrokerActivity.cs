using System.Diagnostics;

namespace Broker.Core.Diagnostics;

/// <summary>
/// The broker's trace source. Spans carry ids an operator can join with the audit log (task,
/// token id, agent SPIFFE id, reason code), never a token, proof or key.
/// </summary>
public static class BrokerActivity
{
    public const string SourceName = "Broker";

    public static readonly ActivitySource Source = new(SourceName, typeof(BrokerActivity).Assembly.GetName().Version?.ToString());
}
