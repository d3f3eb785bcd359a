//! `ferry.cipher`: the decryption procedures need to read what a database encrypted for them
//! (StarRocks' sync.properties keeps passwords as `TO_BASE64(AES_ENCRYPT(pwd, key))`).

use aes::cipher::{BlockDecryptMut, KeyInit, block_padding::Pkcs7};
use mlua::{Lua, LuaString, MultiValue, Table, Value};

use crate::runtime::registry::{FnDoc, ModuleDef, Param};

pub static CIPHER: ModuleDef = ModuleDef {
    name: "cipher",
    summary: "AES_DECRYPT as MySQL, MariaDB and StarRocks compute it.",
    functions: &[FnDoc {
        name: "aes_decrypt",
        signature: "ferry.cipher.aes_decrypt(bytes, key) -> bytes | nil, reason",
        params: &[Param::new("bytes", "string"), Param::new("key", "string")],
        options: &[],
        returns: "string?, string?",
        doc: "The inverse of SQL `AES_ENCRYPT(text, key)` in its default mode (MySQL's \
              block_encryption_mode aes-128-ecb, MariaDB's and StarRocks' only mode): AES-128 \
              in ECB mode with PKCS#7 padding, the key folded into 16 bytes by XOR (MySQL's \
              my_aes_create_key). A wrong key or data that is not AES_ENCRYPT output gives nil \
              and the reason, as SQL's AES_DECRYPT gives NULL.",
        example: Some(
            "-- SELECT TO_BASE64(AES_ENCRYPT('hello', 'secret key')) in MariaDB\n\
             local data = ferry.base64.decode(\"/GrAeBvL3M8IneUPHC++Dw==\")\n\
             assert(ferry.cipher.aes_decrypt(data, \"secret key\") == \"hello\")\n\
             assert(ferry.cipher.aes_decrypt(data, \"other key\") == nil)",
        ),
    }],
    classes: &[],
    constants: &[],
    build,
};

/// The key as MySQL folds it: byte i of the key XORed into byte i mod 16 of 16 zero bytes.
fn fold_key(key: &[u8]) -> [u8; 16] {
    let mut k = [0u8; 16];
    for (i, b) in key.iter().enumerate() {
        k[i % 16] ^= b;
    }
    k
}

/// SQL's `AES_DECRYPT(data, key)` (aes-128-ecb): the plaintext, or why there is none.
pub fn aes_decrypt(data: &[u8], key: &[u8]) -> Result<Vec<u8>, &'static str> {
    if data.is_empty() || !data.len().is_multiple_of(16) {
        return Err("not AES_ENCRYPT output (its length is not a multiple of 16 bytes)");
    }
    let mut buf = data.to_vec();
    let dec = ecb::Decryptor::<aes::Aes128>::new(&fold_key(key).into());
    dec.decrypt_padded_mut::<Pkcs7>(&mut buf)
        .map(|plain| plain.to_vec())
        .map_err(|_| "wrong key (bad padding)")
}

fn build(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "aes_decrypt",
        lua.create_function(|lua, (data, key): (LuaString, LuaString)| {
            Ok(match aes_decrypt(&data.as_bytes(), &key.as_bytes()) {
                Ok(plain) => MultiValue::from_vec(vec![Value::String(lua.create_string(plain)?)]),
                Err(why) => {
                    MultiValue::from_vec(vec![Value::Nil, Value::String(lua.create_string(why)?)])
                }
            })
        })?,
    )?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decrypts_what_mariadb_aes_encrypt_wrote() {
        // SELECT HEX(AES_ENCRYPT('hello', 'secret key')) in MariaDB 10.11.
        let data = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            "/GrAeBvL3M8IneUPHC++Dw==",
        )
        .unwrap();
        assert_eq!(aes_decrypt(&data, b"secret key").unwrap(), b"hello");
        assert!(aes_decrypt(&data, b"other").is_err());
        assert!(aes_decrypt(&data[..15], b"secret key").is_err());
    }
}
