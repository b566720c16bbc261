namespace Broker.Server.OperatorConsole;

/// <summary>Where the console's pages live, under one root so its cookies and headers stay there.</summary>
internal static class ConsolePaths
{
    public const string Root = "/console";
    public const string SignIn = Root + "/sign-in";
    public const string DevSignIn = Root + "/dev-sign-in";
    public const string SignedIn = Root + "/signed-in";
    public const string Denied = Root + "/denied";
    public const string Stylesheet = Root + "/console.css";

    public static bool IsConsole(PathString path) => path.StartsWithSegments(Root, StringComparison.Ordinal);
}
