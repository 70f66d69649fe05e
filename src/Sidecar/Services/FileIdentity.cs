using System.Runtime.InteropServices;

namespace SlidePlugin.Sidecar.Services;

/// <summary>
/// Which file a path names now: device, inode, type and modification time, from statx(2) (its layout is the same on
/// every architecture, unlike struct stat). Two equal identities are the same file, unchanged.
/// </summary>
internal readonly partial record struct FileIdentity(uint DeviceMajor, uint DeviceMinor, ulong Inode, ushort Mode, long ModifiedSeconds, uint ModifiedNanoseconds)
{
    private const int AtFdCwd = -100;
    private const uint StatxBasicStats = 0x7ff;
    private const ushort TypeMask = 0xF000, RegularFile = 0x8000;

    /// <summary>Whether the path named a regular file (not a FIFO, device, socket or folder).</summary>
    public bool IsRegularFile => (Mode & TypeMask) == RegularFile;

    /// <summary>The identity of what <paramref name="path"/> names (symlinks followed), or null when it cannot be read.</summary>
    public static unsafe FileIdentity? Of(string path)
    {
        byte* buffer = stackalloc byte[256];
        if (Statx(AtFdCwd, path, 0, StatxBasicStats, buffer) != 0)
        {
            return null;
        }

        // struct statx: stx_mode at 28, stx_ino at 32, stx_mtime at 112 (tv_sec, tv_nsec), stx_dev_major/minor at 136/140.
        return new FileIdentity(*(uint*)(buffer + 136), *(uint*)(buffer + 140), *(ulong*)(buffer + 32), *(ushort*)(buffer + 28),
            *(long*)(buffer + 112), *(uint*)(buffer + 120));
    }

    /// <summary>A cache key for the file: what was opened, not the path it was reached by.</summary>
    public override string ToString() => $"{DeviceMajor}:{DeviceMinor}:{Inode}@{ModifiedSeconds}.{ModifiedNanoseconds}";

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Statx(int directory, string path, int flags, uint mask, byte* buffer);
}
