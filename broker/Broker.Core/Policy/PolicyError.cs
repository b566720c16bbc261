namespace Broker.Core.Policy;

/// <summary>One problem in a policy file, at a 1-based line and column.</summary>
public sealed record PolicyError(string File, int Line, int Column, string Message)
{
    /// <summary><c>file:line:col: message</c>, the form compilers and editors understand.</summary>
    public override string ToString() => $"{File}:{Line}:{Column}: {Message}";
}

/// <summary>The outcome of loading a policy: a policy and no errors, or errors and no policy.</summary>
public sealed record PolicyLoadResult(BrokerPolicy? Policy, IReadOnlyList<PolicyError> Errors)
{
    public bool Succeeded => Policy is not null;
}

/// <summary>A policy that cannot be put in force; the message lists every error as <c>file:line:col: message</c>.</summary>
public sealed class PolicyLoadException : Exception
{
    public PolicyLoadException(string source, IReadOnlyList<PolicyError> errors)
        : base(FormatMessage(source, errors))
    {
        PolicySource = source;
        Errors = errors;
    }

    /// <summary>The policy file that was refused.</summary>
    public string PolicySource { get; }

    public IReadOnlyList<PolicyError> Errors { get; }

    private static string FormatMessage(string source, IReadOnlyList<PolicyError> errors) =>
        $"Policy '{source}' is invalid ({errors.Count} error{(errors.Count == 1 ? "" : "s")}):{Environment.NewLine}"
        + string.Join(Environment.NewLine, errors);
}
