namespace VirtFs.VhostUser; internal static class Placeholder {}
