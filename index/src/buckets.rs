use crate::counts::forget_counters;
use crate::model::{
    BUCKETS, BucketRecord, Quota, ShardLayout, USAGE, decode, encode, object_map, part_map,
    upload_map,
};
use crate::{Index, IndexError, Result};
use kura_backend::Batch;

impl Index {
    /// Creates a bucket, or fails with `BucketExists` naming the current owner. `configure`
    /// sets the new record's settings (ACL, ownership, …) in the same write.
    pub async fn create_bucket(
        &self,
        name: &str,
        owner: &str,
        region: &str,
        configure: impl FnOnce(&mut BucketRecord),
    ) -> Result<BucketRecord> {
        let record = {
            let _guard = self.locks.buckets();
            if let Some(existing) = self.find_bucket(name)? {
                return Err(IndexError::BucketExists {
                    owner: existing.owner,
                });
            }
            let mut record = BucketRecord {
                name: name.to_owned(),
                owner: owner.to_owned(),
                created_ms: self.now_ms(),
                region: region.to_owned(),
                layout: ShardLayout {
                    generation: self.clock.stamp().ms,
                    shards: self.initial_shards,
                    counted: true,
                },
                quota: Quota::default(),
                reshard: None,
                grants: Vec::new(),
                tags: Vec::new(),
                cors: None,
                default_encryption: None,
                lifecycle: None,
                lifecycle_pass: None,
                policy: None,
                acl: None,
                ownership: None,
                public_access_block: None,
            };
            configure(&mut record);
            let mut batch = Batch::default();
            batch.put(BUCKETS, name.as_bytes(), encode(&record));
            self.kv.apply(batch)?;
            record
        };
        self.sync().await?;
        Ok(record)
    }

    pub fn bucket(&self, name: &str) -> Result<BucketRecord> {
        self.find_bucket(name)?.ok_or(IndexError::NoSuchBucket)
    }

    /// Lets `user` use `bucket` (`granted`), or stops letting them.
    pub async fn set_grant(&self, bucket: &str, user: &str, granted: bool) -> Result<BucketRecord> {
        self.update_bucket(bucket, |record| {
            record.grants.retain(|u| u != user);
            if granted {
                record.grants.push(user.to_owned());
            }
        })
        .await
    }

    /// Changes a bucket record's settings (tags, CORS rules, …) durably, under the bucket
    /// lock.
    pub async fn update_bucket(
        &self,
        bucket: &str,
        change: impl FnOnce(&mut BucketRecord),
    ) -> Result<BucketRecord> {
        let record = {
            let _guard = self.locks.buckets();
            let mut record = self.bucket(bucket)?;
            change(&mut record);
            let mut batch = Batch::default();
            batch.put(BUCKETS, bucket.as_bytes(), encode(&record));
            self.kv.apply(batch)?;
            record
        };
        self.sync().await?;
        Ok(record)
    }

    fn find_bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        self.kv
            .get(BUCKETS, name.as_bytes())?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Every bucket, in name order.
    pub fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        self.kv
            .scan(BUCKETS, b"")?
            .map(|item| decode(&item?.1))
            .collect()
    }

    /// Whether a bucket holds any object (current or not).
    pub fn has_objects(&self, name: &str) -> Result<bool> {
        self.any_object(&self.bucket(name)?)
    }

    fn any_object(&self, record: &BucketRecord) -> Result<bool> {
        let layout = &record.layout;
        for shard in 0..layout.shards {
            let map = object_map(&record.name, layout, shard);
            if self.kv.scan(&map, b"")?.next().is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Deletes an empty bucket (no object and no open multipart upload).
    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        let record = {
            let _guard = self.locks.buckets();
            let record = self.bucket(name)?;
            if self.any_object(&record)? || self.kv.scan(&upload_map(name), b"")?.next().is_some() {
                return Err(IndexError::BucketNotEmpty);
            }
            let mut batch = Batch::default();
            batch.delete(BUCKETS, name.as_bytes());
            batch.delete(USAGE, name.as_bytes());
            for layout in record.layouts() {
                forget_counters(&mut batch, name, layout);
            }
            self.kv.apply(batch)?;
            record
        };
        self.sync().await?;
        // The maps are empty; removing them is tidying, safe to lose in a crash.
        for layout in record.layouts() {
            for shard in 0..layout.shards {
                self.kv.drop_map(&object_map(name, layout, shard))?;
            }
        }
        self.kv.drop_map(&upload_map(name))?;
        self.kv.drop_map(&part_map(name))?;
        Ok(())
    }
}
