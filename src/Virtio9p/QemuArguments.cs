namespace VirtFs.Virtio9p;

/// <summary>The QEMU command-line fragment that plugs a guest into this backend.</summary>
internal static class QemuArguments
{
    public static string Format(BackendOptions options)
    {
        int configSize = 2 + System.Text.Encoding.UTF8.GetByteCount(options.Tag!);
        // vhost-user needs the guest RAM in shared memory the backend can map (memfd, share=on).
        return string.Join(' ',
            $"-object memory-backend-memfd,id=virtfs-mem,size={options.GuestMemory},share=on",
            "-machine memory-backend=virtfs-mem",
            $"-chardev socket,id=virtfs0,path={options.SocketPath}",
            $"-device vhost-user-test-device-pci,chardev=virtfs0,virtio-id=9,num_vqs=1,vq_size=1024,config_size={configSize}");
    }
}
