//! The modes that manage oauthtest's own store: `init` it, `list` what is stored, `import` a
//! credential, `keygen` a key, `rekey` every credential to the current key, `cleanup` what a
//! killed run left; and `list` and
//! `import` on the application's own store (`app_list`, `app_import`).

pub mod app_import;
pub mod app_list;
pub mod cleanup;
pub mod import;
pub mod init;
pub mod keygen;
pub mod list;
pub mod rekey;
