//! `wasi:filesystem` behind the core's [`FileSystem`]: absolute paths are
//! resolved against the host's preopened folders (the longest matching one),
//! and files are read with positional reads. The sandbox decides what is
//! reachable: a path outside every preopen, or a symlink leaving one, fails.

use crate::core::io::{FileKind, FileStat, FileSystem, ReadAt};
use wasi::filesystem::preopens;
use wasi::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorType, ErrorCode, OpenFlags, PathFlags,
};

pub struct WasiFs {
    preopens: Vec<(Descriptor, String)>,
}

impl WasiFs {
    pub fn new() -> Self {
        WasiFs {
            preopens: preopens::get_directories(),
        }
    }

    /// The preopen holding `path`, and the path relative to it.
    fn resolve<'p>(&self, path: &'p str) -> Result<(&Descriptor, &'p str), String> {
        let mut best: Option<(&Descriptor, &'p str, usize)> = None;
        for (dir, name) in &self.preopens {
            let name = name.trim_end_matches('/');
            let rest = if name.is_empty() {
                path.strip_prefix('/')
            } else if name == "." && !path.starts_with('/') {
                Some(path)
            } else {
                path.strip_prefix(name).and_then(|r| {
                    if r.is_empty() {
                        Some(".")
                    } else {
                        r.strip_prefix('/')
                    }
                })
            };
            if let Some(rest) = rest {
                if best.is_none_or(|(_, _, len)| name.len() > len) {
                    best = Some((dir, if rest.is_empty() { "." } else { rest }, name.len()));
                }
            }
        }
        best.map(|(d, r, _)| (d, r))
            .ok_or_else(|| "outside every folder the host granted (not preopened)".to_string())
    }
}

impl Default for WasiFs {
    fn default() -> Self {
        Self::new()
    }
}

pub struct WasiFile(Descriptor);

fn describe(code: ErrorCode) -> String {
    match code {
        ErrorCode::NoEntry => "no such file or folder".into(),
        ErrorCode::Access | ErrorCode::NotPermitted => "permission denied by the sandbox".into(),
        ErrorCode::IsDirectory => "is a folder".into(),
        ErrorCode::NotDirectory => "not a folder".into(),
        ErrorCode::Loop => "too many symlinks".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

impl ReadAt for WasiFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, String> {
        let (data, _eof) = self.0.read(buf.len() as u64, offset).map_err(describe)?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    fn stat(&self) -> Result<FileStat, String> {
        let stat = self.0.stat().map_err(describe)?;
        let mtime_ns = stat.data_modification_timestamp.map_or(0, |t| {
            t.seconds
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(t.nanoseconds))
        });
        Ok(FileStat {
            size: stat.size,
            mtime_ns,
        })
    }
}

impl FileSystem for WasiFs {
    type File = WasiFile;

    fn kind(&self, path: &str) -> Result<FileKind, String> {
        let (dir, rel) = self.resolve(path)?;
        let stat = dir
            .stat_at(PathFlags::SYMLINK_FOLLOW, rel)
            .map_err(describe)?;
        Ok(match stat.type_ {
            DescriptorType::RegularFile => FileKind::Regular,
            DescriptorType::Directory => FileKind::Directory,
            DescriptorType::Fifo => FileKind::Fifo,
            DescriptorType::Socket => FileKind::Socket,
            DescriptorType::BlockDevice | DescriptorType::CharacterDevice => FileKind::Device,
            DescriptorType::SymbolicLink | DescriptorType::Unknown => FileKind::Other,
        })
    }

    fn open_file(&self, path: &str) -> Result<WasiFile, String> {
        let (dir, rel) = self.resolve(path)?;
        dir.open_at(
            PathFlags::SYMLINK_FOLLOW,
            rel,
            OpenFlags::empty(),
            DescriptorFlags::READ,
        )
        .map(WasiFile)
        .map_err(describe)
    }

    fn write_file(&self, path: &str, bytes: &[u8]) -> Result<(), String> {
        let (dir, rel) = self.resolve(path)?;
        let tmp = format!("{rel}.tmp");
        let file = dir
            .open_at(
                PathFlags::empty(),
                &tmp,
                OpenFlags::CREATE | OpenFlags::TRUNCATE,
                DescriptorFlags::WRITE,
            )
            .map_err(describe)?;
        let mut written = 0usize;
        while written < bytes.len() {
            let n = file
                .write(&bytes[written..], written as u64)
                .map_err(describe)?;
            if n == 0 {
                return Err("the write made no progress".into());
            }
            written += n as usize;
        }
        drop(file);
        dir.rename_at(&tmp, dir, rel).map_err(describe)
    }

    fn list_dir(&self, path: &str) -> Result<Option<Vec<String>>, String> {
        let (dir, rel) = match self.resolve(path) {
            Ok(found) => found,
            Err(_) => return Ok(None),
        };
        let folder = match dir.open_at(
            PathFlags::SYMLINK_FOLLOW,
            rel,
            OpenFlags::DIRECTORY,
            DescriptorFlags::READ,
        ) {
            Ok(folder) => folder,
            Err(ErrorCode::NoEntry) => return Ok(None),
            Err(e) => return Err(describe(e)),
        };
        let stream = folder.read_directory().map_err(describe)?;
        let mut names = Vec::new();
        while let Some(entry) = stream.read_directory_entry().map_err(describe)? {
            names.push(entry.name);
        }
        names.sort();
        Ok(Some(names))
    }
}
