using VirtFs.Virtio9p.FileSystem;

namespace VirtFs.Virtio9p.Tests.FileSystem;

/// <summary>The conformance suite on <see cref="LocalFileSystem"/> over a temporary directory.</summary>
public sealed class LocalFileSystemConformanceTests(LocalExport export)
    : FileSystemConformanceTests, IClassFixture<LocalExport>
{
    protected override IFileSystem Fs => export.FileSystem;
    protected override string Export => export.Export;
    protected override string Outside => export.Outside;
}

/// <summary>
/// The conformance suite on <see cref="ProxyFileSystem"/> over the real helper (src/Helper). Where the helper's
/// documented policy differs from <see cref="LocalFileSystem"/> (it follows a final symlink for chmod and
/// truncate, as QEMU's helper does, inside its chroot), the flags below say so and the tests check both sides.
/// </summary>
public sealed class ProxyFileSystemConformanceTests(HelperExport export)
    : FileSystemConformanceTests, IClassFixture<HelperExport>, IRequiresHelper
{
    protected override IFileSystem Fs => export.FileSystem;
    protected override string Export => export.Export;
    protected override string Outside => export.Outside;
    protected override bool ChmodFollowsFinalSymlink => true;
    protected override bool TruncateFollowsFinalSymlink => true;
}
