namespace Broker.Core.Audit;

/// <summary>
/// One audit folder, one writer: an OS-level exclusive lock on <c>.lock</c> in the folder, held
/// while the sink lives. Two writers on one folder would truncate each other's torn tails at
/// start and interleave one node id's chain, which verification then reports as tampering. The
/// operating system drops the lock when the process dies, so a crash never leaves it stuck.
/// </summary>
public sealed class AuditFolderLock : IDisposable
{
    public const string FileName = ".lock";

    private readonly FileStream _file;

    private AuditFolderLock(FileStream file) => _file = file;

    /// <summary>Takes the lock on <paramref name="directory"/> (which must exist), or throws <see cref="AuditFolderLockedException"/> when another writer holds it.</summary>
    public static AuditFolderLock Acquire(string directory)
    {
        var path = Path.Combine(directory, FileName);
        try
        {
            // FileShare.None is flock(LOCK_EX | LOCK_NB) on Unix and a share-mode lock on Windows.
            var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            var file = new FileStream(path, options);
            try
            {
                // Who holds it, for a person looking at the folder; the lock itself is the open handle.
                file.SetLength(0);
                var holder = System.Text.Encoding.UTF8.GetBytes($"{Environment.ProcessId}\n");
                file.Write(holder);
                file.Flush();
            }
            catch (IOException)
            {
                // The lock is held all the same; the note is a courtesy.
            }

            return new AuditFolderLock(file);
        }
        catch (IOException ex) when (IsSharingViolation(ex))
        {
            throw new AuditFolderLockedException(directory, ex);
        }
    }

    public void Dispose() => _file.Dispose();

    // On Unix a refused flock surfaces as an IOException carrying EWOULDBLOCK (11 on Linux, 35 on
    // macOS); on Windows as ERROR_SHARING_VIOLATION (32). Anything else (a read-only disk) is not "in use".
    private static bool IsSharingViolation(IOException ex) =>
        OperatingSystem.IsWindows() ? (ex.HResult & 0xFFFF) == 32
        : OperatingSystem.IsMacOS() ? ex.HResult == 35
        : ex.HResult == 11;
}

/// <summary>Another process writes this audit folder (BRK1160): each node needs its own folder.</summary>
public sealed class AuditFolderLockedException(string directory, Exception inner)
    : Exception(Describe(directory), inner)
{
    public const string Id = "BRK1160";

    public string Directory { get; } = directory;

    private static string Describe(string directory) =>
        $"{Id}: the audit folder '{directory}' is in use by another broker process (it holds '{Path.Combine(directory, AuditFolderLock.FileName)}'); "
        + "each node needs its own audit folder (Broker:AuditPath, or --audit-dir in --dev).";
}
