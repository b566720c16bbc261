namespace Broker.Client.Tests;

/// <summary>
/// brokerctl ships as a .NET tool: packed from the repository and installed from that folder
/// alone (no other package source), the installed command runs.
/// </summary>
public sealed class ToolPackageTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(4);
    private readonly string _work = Directory.CreateTempSubdirectory("brokerctl-tool-").FullName;

    [Fact]
    public async Task Dotnet_pack_then_tool_install_from_the_folder_gives_a_working_brokerctl()
    {
        var packages = Path.Combine(_work, "packages");
        var tools = Path.Combine(_work, "tools");

        // The build the tests run on already compiled brokerctl: pack it as built.
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        var pack = await RunAsync("dotnet", "pack", Path.Combine(Repository.Root, "broker", "Broker.Cli"), "-c", configuration, "--no-build", "-o", packages);
        Assert.True(pack.Code == 0, pack.Output);
        Assert.Single(Directory.GetFiles(packages, "brokerctl.*.nupkg"));

        // Only the local folder as a source: the install must not need anything from the network.
        var config = Path.Combine(_work, "nuget.config");
        await File.WriteAllTextAsync(config, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="local" value="{packages}" />
              </packageSources>
            </configuration>
            """);
        var install = await RunAsync("dotnet", "tool", "install", "brokerctl", "--tool-path", tools, "--configfile", config, "--add-source", packages);
        Assert.True(install.Code == 0, install.Output);

        var help = await RunAsync(Path.Combine(tools, "brokerctl"), "--help");
        Assert.True(help.Code == 0, help.Output);
        Assert.Contains("brokerctl [command] [options]", help.Output, StringComparison.Ordinal);
        Assert.Contains("issue", help.Output, StringComparison.Ordinal);
    }

    private static async Task<(int Code, string Output)> RunAsync(string file, params string[] args)
    {
        var (code, stdout, stderr) = await ChildProcess.RunToExitAsync(file, Bound, args);
        return (code, stdout + stderr);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_work, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
