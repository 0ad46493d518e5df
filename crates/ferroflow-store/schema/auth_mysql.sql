-- MLflow 3.17.2's basic-auth database on MySQL and MariaDB (alembic revision f1a2b3c4d5e6 in alembic_version_auth).
--
-- Produced by schema/regenerate_auth.py: MLflow's own auth migrations on a fresh database, dumped and cleaned as regenerate.py cleans mysql.sql (dependency order, one statement per `;` line end).
-- MLflow's own migration cannot create it: its first revision names two foreign keys fk_user_id, which
-- MySQL refuses; registered_model_permissions' is named fk_registered_model_perm_user_id here.
-- `SqlAuthStore::open` applies it to an empty auth database, then stamps alembic_version_auth, as MLflow does.

CREATE TABLE `alembic_version_auth` (
  `version_num` varchar(32) NOT NULL,
  PRIMARY KEY (`version_num`)
);

CREATE TABLE `users` (
  `id` int NOT NULL AUTO_INCREMENT,
  `username` varchar(255) DEFAULT NULL,
  `password_hash` varchar(255) DEFAULT NULL,
  `is_admin` tinyint(1) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `username` (`username`)
);

CREATE TABLE `experiment_permissions` (
  `id` int NOT NULL AUTO_INCREMENT,
  `experiment_id` varchar(255) NOT NULL,
  `user_id` int NOT NULL,
  `permission` varchar(255) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `unique_experiment_user` (`experiment_id`,`user_id`),
  KEY `fk_user_id` (`user_id`),
  CONSTRAINT `fk_user_id` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`)
);

CREATE TABLE `gateway_endpoint_permissions` (
  `id` int NOT NULL AUTO_INCREMENT,
  `endpoint_id` varchar(255) NOT NULL,
  `user_id` int NOT NULL,
  `permission` varchar(255) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `unique_endpoint_user` (`endpoint_id`,`user_id`),
  KEY `fk_gateway_endpoint_perm_user_id` (`user_id`),
  CONSTRAINT `fk_gateway_endpoint_perm_user_id` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`)
);

CREATE TABLE `gateway_model_definition_permissions` (
  `id` int NOT NULL AUTO_INCREMENT,
  `model_definition_id` varchar(255) NOT NULL,
  `user_id` int NOT NULL,
  `permission` varchar(255) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `unique_model_def_user` (`model_definition_id`,`user_id`),
  KEY `fk_gateway_model_def_perm_user_id` (`user_id`),
  CONSTRAINT `fk_gateway_model_def_perm_user_id` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`)
);

CREATE TABLE `gateway_secret_permissions` (
  `id` int NOT NULL AUTO_INCREMENT,
  `secret_id` varchar(255) NOT NULL,
  `user_id` int NOT NULL,
  `permission` varchar(255) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `unique_secret_user` (`secret_id`,`user_id`),
  KEY `fk_gateway_secret_perm_user_id` (`user_id`),
  CONSTRAINT `fk_gateway_secret_perm_user_id` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`)
);

CREATE TABLE `registered_model_permissions` (
  `id` int NOT NULL AUTO_INCREMENT,
  `name` varchar(255) NOT NULL,
  `user_id` int NOT NULL,
  `permission` varchar(255) DEFAULT NULL,
  `workspace` varchar(63) NOT NULL DEFAULT 'default',
  PRIMARY KEY (`id`),
  UNIQUE KEY `unique_workspace_name_user` (`workspace`,`name`,`user_id`),
  KEY `fk_registered_model_perm_user_id` (`user_id`),
  CONSTRAINT `fk_registered_model_perm_user_id` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`)
);

CREATE TABLE `roles` (
  `id` int NOT NULL AUTO_INCREMENT,
  `name` varchar(255) NOT NULL,
  `workspace` varchar(63) NOT NULL,
  `description` varchar(1024) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `unique_workspace_role_name` (`workspace`,`name`),
  KEY `idx_roles_workspace` (`workspace`)
);

CREATE TABLE `role_permissions` (
  `id` int NOT NULL AUTO_INCREMENT,
  `role_id` int NOT NULL,
  `resource_type` varchar(64) NOT NULL,
  `resource_pattern` varchar(255) NOT NULL,
  `permission` varchar(255) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `unique_role_resource_perm` (`role_id`,`resource_type`,`resource_pattern`),
  KEY `idx_role_permissions_role_id` (`role_id`),
  CONSTRAINT `role_permissions_ibfk_1` FOREIGN KEY (`role_id`) REFERENCES `roles` (`id`)
);

CREATE TABLE `scorer_permissions` (
  `id` int NOT NULL AUTO_INCREMENT,
  `experiment_id` varchar(255) NOT NULL,
  `scorer_name` varchar(256) NOT NULL,
  `user_id` int NOT NULL,
  `permission` varchar(255) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `unique_scorer_user` (`experiment_id`,`scorer_name`,`user_id`),
  KEY `fk_scorer_perm_user_id` (`user_id`),
  CONSTRAINT `fk_scorer_perm_user_id` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`)
);

CREATE TABLE `user_role_assignments` (
  `id` int NOT NULL AUTO_INCREMENT,
  `user_id` int NOT NULL,
  `role_id` int NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `unique_user_role` (`user_id`,`role_id`),
  KEY `idx_user_role_assignments_user_id` (`user_id`),
  KEY `idx_user_role_assignments_role_id` (`role_id`),
  CONSTRAINT `user_role_assignments_ibfk_1` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`),
  CONSTRAINT `user_role_assignments_ibfk_2` FOREIGN KEY (`role_id`) REFERENCES `roles` (`id`)
);

CREATE TABLE `workspace_permissions` (
  `workspace` varchar(63) NOT NULL,
  `user_id` int NOT NULL,
  `permission` varchar(32) NOT NULL,
  PRIMARY KEY (`workspace`,`user_id`),
  KEY `idx_workspace_permissions_user_id` (`user_id`),
  KEY `idx_workspace_permissions_workspace` (`workspace`),
  CONSTRAINT `workspace_permissions_ibfk_1` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`)
);
