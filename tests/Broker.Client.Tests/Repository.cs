namespace Broker.Client.Tests;

/// <summary>The clone the tests were built from.</summary>
internal static class Repository
{
    /// <summary>The folder holding Broker.sln, above the test's output folder.</summary>
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Broker.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Broker.sln not found above the test folder.");
    }
}
