namespace VirtFs.ProxyFs; internal static class Placeholder {}
