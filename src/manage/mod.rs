//! The modes that manage oauthtest's own store: `init` it, `list` what is stored, `import` a
//! credential, `keygen` a key, `rekey` every credential to the current key.

pub mod import;
pub mod init;
pub mod keygen;
pub mod list;
pub mod rekey;
