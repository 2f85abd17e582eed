-- The slice of SWAMP's database that swampd's database path touches, for the
-- tests: our own SQL, with SWAMP's names and signatures
-- (reference/swamp-db-deploy.md sections 1.1, 1.2, 1.3, 1.4, 2.1).
-- Applied to one scratch database per test run: `mariadb --database=X < schema.sql`.
--
-- Differences from SWAMP, on purpose:
-- * One database instead of assessment + viewer_store + package_store; no user or
--   project validation (the tests are about what happens after it).
-- * assessment_result carries package_type_id itself (SWAMP joins package_store).
-- * The program paths come from swampd_test_setting, so a test can point them at
--   its own copy of etc/mariadb/ wrappers (SWAMP hard-codes /usr/local/bin/...).
-- * Values are quoted with swampd_quote(), which escapes single quotes; SWAMP's
--   procedures splice values between single quotes unescaped, a shell injection
--   (etc/mariadb/README.md explains the one-line fix operators should apply).
-- * Every command and its raw output are logged in swampd_test_eval_log.
-- * Like SWAMP, the CodeDX branch assigns launch_viewer's answer to
--   return_string VARCHAR(100) unshortened: under the strict sql_mode the
--   procedure is created with (MariaDB's default), a longer answer fails the CALL.

CREATE TABLE viewer_version (
  viewer_version_uuid VARCHAR(45) PRIMARY KEY,
  viewer_uuid VARCHAR(45) NOT NULL,
  version_string VARCHAR(100)
);

CREATE TABLE viewer_instance (
  viewer_instance_uuid VARCHAR(45) PRIMARY KEY,
  viewer_version_uuid VARCHAR(45),
  project_uuid VARCHAR(45) NOT NULL,
  viewer_db_path VARCHAR(200),
  viewer_db_checksum VARCHAR(200),
  vm_ip_address VARCHAR(50),
  proxy_url VARCHAR(100),
  status_code INT,
  status VARCHAR(100),
  platform_image VARCHAR(100),
  code_dx_version VARCHAR(100),
  create_user VARCHAR(25),
  create_date TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_user VARCHAR(25),
  update_date TIMESTAMP NULL
);

CREATE TABLE viewer_launch_history (
  viewer_launch_history_id INT AUTO_INCREMENT PRIMARY KEY,
  viewer_version_uuid VARCHAR(45),
  project_uuid VARCHAR(45),
  viewer_instance_uuid VARCHAR(45),
  assessment_result_uuid VARCHAR(45),
  user_uuid VARCHAR(45),
  run_date DATETIME,
  create_user VARCHAR(25),
  create_date TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE assessment_result (
  assessment_result_uuid VARCHAR(45) PRIMARY KEY,
  package_name VARCHAR(100),
  package_type_id INT,
  tool_name VARCHAR(100),
  source_archive_path VARCHAR(200),
  file_path VARCHAR(200),
  package_version VARCHAR(100),
  tool_version VARCHAR(100),
  platform_name VARCHAR(100),
  platform_version VARCHAR(100),
  execution_record_uuid VARCHAR(45)
);

CREATE TABLE execution_record (
  execution_record_uuid VARCHAR(45) PRIMARY KEY,
  run_date DATETIME,
  completion_date DATETIME
);

CREATE TABLE sys_exec_cmd_log (
  sys_exec_cmd_log_id INT AUTO_INCREMENT PRIMARY KEY,
  cmd VARCHAR(5000),
  caller VARCHAR(100),
  create_date TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE swampd_test_setting (
  name VARCHAR(64) PRIMARY KEY,
  value VARCHAR(500) NOT NULL
);
INSERT INTO swampd_test_setting VALUES
  ('launch_viewer_cmd', '/usr/local/bin/launch_viewer'),
  ('kill_run_cmd', '/usr/local/bin/kill_run');

CREATE TABLE swampd_test_eval_log (
  id INT AUTO_INCREMENT PRIMARY KEY,
  cmd TEXT,
  output TEXT
);

INSERT INTO viewer_version VALUES
  ('8f9213ef-5d04-11e3-9fa4-001a4a81450b', 'b7289170-5c46-11e3-9fa4-001a4a81450b', 'Native'),
  ('5d0fb63c-865a-11e3-88bb-001a4a81450b', '4221533e-865a-11e3-88bb-001a4a81450b', 'CodeDX'),
  ('b0e931d7-bfb2-11e5-bf72-001a4a814413', 'a0e1d0fb-bfb2-11e5-bf72-001a4a814413', 'ThreadFix');

DELIMITER $$

-- One shell word for any value: 'it'\''s'.  NULL stays NULL, so that
-- ifnull(concat(' --opt ', swampd_quote(x)), '') drops the option as SWAMP's does.
CREATE FUNCTION swampd_quote(v TEXT) RETURNS TEXT DETERMINISTIC
BEGIN
  RETURN concat(char(39), replace(v, char(39), concat(char(39), char(92), char(39), char(39))), char(39));
END$$

CREATE PROCEDURE store_viewer(IN viewer_instance_uuid_in VARCHAR(45), IN viewer_db_path_in VARCHAR(200),
                              IN viewer_db_checksum_in VARCHAR(200), IN platform_image_in VARCHAR(100),
                              IN code_dx_version_in VARCHAR(100), OUT return_string VARCHAR(100))
BEGIN
  DECLARE n INT;
  SELECT count(*) INTO n FROM viewer_instance WHERE viewer_instance_uuid = viewer_instance_uuid_in;
  IF n = 1 THEN
    UPDATE viewer_instance SET viewer_db_path = viewer_db_path_in, viewer_db_checksum = viewer_db_checksum_in,
           platform_image = platform_image_in, code_dx_version = code_dx_version_in, update_date = now()
     WHERE viewer_instance_uuid = viewer_instance_uuid_in;
    SET return_string = 'SUCCESS';
  ELSE
    SET return_string = 'ERROR: Viewer Instance Not Found';
  END IF;
END$$

CREATE PROCEDURE update_viewer_instance(IN viewer_instance_uuid_in VARCHAR(45), IN status_in VARCHAR(100),
                                        IN status_code_in INT, IN vm_ip_address_in VARCHAR(50),
                                        IN proxy_url_in VARCHAR(100), OUT return_string VARCHAR(100))
BEGIN
  DECLARE n INT;
  SELECT count(*) INTO n FROM viewer_instance WHERE viewer_instance_uuid = viewer_instance_uuid_in;
  IF n = 1 THEN
    UPDATE viewer_instance SET status = status_in, status_code = status_code_in,
           vm_ip_address = vm_ip_address_in, proxy_url = proxy_url_in, update_date = now()
     WHERE viewer_instance_uuid = viewer_instance_uuid_in;
    SET return_string = 'SUCCESS';
  ELSE
    SET return_string = 'ERROR: Record Not Found';
  END IF;
END$$

CREATE PROCEDURE launch_viewer(IN assessment_result_uuid_in VARCHAR(5000), IN user_uuid_in VARCHAR(45),
                               IN viewer_version_uuid_in VARCHAR(45), IN project_uuid_in VARCHAR(45),
                               IN destination_base_path_in VARCHAR(45), IN results_type_in VARCHAR(45),
                               OUT return_path VARCHAR(200), OUT return_string VARCHAR(100),
                               OUT viewer_instance_uuid_out VARCHAR(45))
BEGIN
  DECLARE launcher VARCHAR(500);
  DECLARE cmd TEXT;
  DECLARE output TEXT;
  DECLARE viewer_name VARCHAR(45);
  DECLARE vi_count INT;
  DECLARE vi_uuid VARCHAR(45);
  DECLARE vi_db_path VARCHAR(200);
  DECLARE vi_db_checksum VARCHAR(200);
  DECLARE ar_list VARCHAR(5000);
  DECLARE ar_uuid VARCHAR(45);
  DECLARE ar_count INT;

  SELECT value INTO launcher FROM swampd_test_setting WHERE name = 'launch_viewer_cmd';
  SET return_path = NULL;

  IF viewer_version_uuid_in = '8f9213ef-5d04-11e3-9fa4-001a4a81450b' THEN
    -- Native: synchronous, prints a file name; the options in SWAMP's order
    SET ar_uuid = substring_index(assessment_result_uuid_in, ',', 1);
    SELECT concat(' ', launcher, ' --viewer_name ', swampd_quote('Native'),
      ifnull(concat(' --results_type ', swampd_quote(results_type_in)), ''),
      ifnull(concat(' --package_type ', swampd_quote(ar.package_type_id)), ''),
      ifnull(concat(' --file_path ', swampd_quote(ar.file_path)), ''),
      ifnull(concat(' --outdir ', swampd_quote(concat(destination_base_path_in, assessment_result_uuid_in))), ''),
      ifnull(concat(' --package_name ', swampd_quote(ar.package_name)), ''),
      ifnull(concat(' --package_version ', swampd_quote(ar.package_version)), ''),
      ifnull(concat(' --tool_name ', swampd_quote(ar.tool_name)), ''),
      ifnull(concat(' --tool_version ', swampd_quote(ar.tool_version)), ''),
      ifnull(concat(' --platform_name ', swampd_quote(ar.platform_name)), ''),
      ifnull(concat(' --platform_version ', swampd_quote(ar.platform_version)), ''),
      ifnull(concat(' --start_date ', swampd_quote(er.run_date)), ''),
      ifnull(concat(' --end_date ', swampd_quote(er.completion_date)), ''),
      ifnull(concat(' --user_uuid ', swampd_quote(user_uuid_in)), ''))
      INTO cmd
      FROM assessment_result ar LEFT JOIN execution_record er ON er.execution_record_uuid = ar.execution_record_uuid
     WHERE ar.assessment_result_uuid = ar_uuid;
    SELECT sys_eval(cmd) INTO output;
    INSERT INTO swampd_test_eval_log (cmd, output) VALUES (cmd, output);
    INSERT INTO viewer_launch_history (viewer_version_uuid, project_uuid, viewer_instance_uuid,
                                       assessment_result_uuid, user_uuid, run_date)
      VALUES (viewer_version_uuid_in, project_uuid_in, 'NATIVE', ar_uuid, user_uuid_in, now());
    IF output IS NULL OR upper(output) LIKE '%ERROR%' THEN
      SET return_string = 'ERROR FILE XFM';
    ELSE
      SET return_string = 'SUCCESS';
      SET return_path = concat(destination_base_path_in, ar_uuid, '/', trim(TRAILING '\n' FROM output));
    END IF;
  ELSEIF viewer_version_uuid_in IN ('5d0fb63c-865a-11e3-88bb-001a4a81450b', 'b0e931d7-bfb2-11e5-bf72-001a4a814413') THEN
    SET viewer_name = IF(viewer_version_uuid_in = '5d0fb63c-865a-11e3-88bb-001a4a81450b', 'CodeDX', 'ThreadFix');
    SELECT count(*) INTO vi_count FROM viewer_instance
     WHERE viewer_version_uuid = viewer_version_uuid_in AND project_uuid = project_uuid_in;
    IF vi_count = 1 THEN
      SELECT viewer_instance_uuid, viewer_db_path, viewer_db_checksum INTO vi_uuid, vi_db_path, vi_db_checksum
        FROM viewer_instance WHERE viewer_version_uuid = viewer_version_uuid_in AND project_uuid = project_uuid_in;
    ELSEIF vi_count = 0 THEN
      SET vi_uuid = uuid();
      INSERT INTO viewer_instance (viewer_instance_uuid, viewer_version_uuid, project_uuid)
        VALUES (vi_uuid, viewer_version_uuid_in, project_uuid_in);
    ELSE
      SET return_string = 'ERROR: Viewer Instance Error';
    END IF;
    SET cmd = concat(' ', launcher, ' --viewer_name ', swampd_quote(viewer_name),
      ' --project ', swampd_quote(project_uuid_in),
      ifnull(concat(' --viewer_db_path ', swampd_quote(vi_db_path)), ''),
      ifnull(concat(' --viewer_db_checksum ', swampd_quote(vi_db_checksum)), ''),
      ifnull(concat(' --viewer_uuid ', swampd_quote(vi_uuid)), ''),
      ifnull(concat(' --user_uuid ', swampd_quote(user_uuid_in)), ''));
    IF assessment_result_uuid_in IS NOT NULL THEN
      SET ar_list = assessment_result_uuid_in;
      IF right(ar_list, 1) <> ',' THEN SET ar_list = concat(ar_list, ','); END IF;
      SET ar_uuid = substring_index(ar_list, ',', 1);
      SET ar_list = substring(ar_list, length(ar_uuid) + 2);
      SELECT count(*) INTO ar_count FROM assessment_result WHERE assessment_result_uuid = ar_uuid;
      IF ar_count = 1 THEN
        SELECT concat(cmd,
                 ifnull(concat(' --package ', swampd_quote(package_name)), ''),
                 ifnull(concat(' --tool_name ', swampd_quote(tool_name)), ''),
                 ifnull(concat(' --source_archive_path ', swampd_quote(source_archive_path)), ''),
                 ifnull(concat(' --package_type ', swampd_quote(package_type_id)), ''),
                 ifnull(concat(' --file_path ', swampd_quote(file_path)), ''))
          INTO cmd FROM assessment_result WHERE assessment_result_uuid = ar_uuid;
        INSERT INTO viewer_launch_history (viewer_version_uuid, project_uuid, viewer_instance_uuid,
                                           assessment_result_uuid, user_uuid, run_date)
          VALUES (viewer_version_uuid_in, project_uuid_in, vi_uuid, ar_uuid, user_uuid_in, now());
        WHILE ar_list <> '' DO
          SET ar_uuid = substring_index(ar_list, ',', 1);
          SET ar_list = substring(ar_list, length(ar_uuid) + 2);
          SELECT concat(cmd, ifnull(concat(' --file_path ', swampd_quote(file_path)), '')) INTO cmd
            FROM assessment_result WHERE assessment_result_uuid = ar_uuid;
          INSERT INTO viewer_launch_history (viewer_version_uuid, project_uuid, viewer_instance_uuid,
                                             assessment_result_uuid, user_uuid, run_date)
            VALUES (viewer_version_uuid_in, project_uuid_in, vi_uuid, ar_uuid, user_uuid_in, now());
        END WHILE;
      ELSE
        SET return_string = 'ERROR: RESULT NOT FOUND';
      END IF;
    END IF;
    SELECT sys_eval(cmd) INTO output;
    INSERT INTO swampd_test_eval_log (cmd, output) VALUES (cmd, output);
    IF output IS NULL THEN
      SET return_string = 'Error Launching Viewer';
    ELSEIF upper(output) LIKE '%ERROR%' THEN
      SET return_string = output;  -- as SWAMP: a line over 100 characters fails the CALL (1406) in strict mode
    ELSE
      SET return_string = 'SUCCESS';
    END IF;
    SET viewer_instance_uuid_out = vi_uuid;
  ELSE
    SET return_string = 'ERROR: INVALID VIEWER VERSION UUID';
  END IF;
END$$

CREATE PROCEDURE kill_assessment_run(IN execution_record_uuid_in VARCHAR(45), IN hard_kill_flag_in VARCHAR(45),
                                     OUT return_string VARCHAR(100))
BEGIN
  DECLARE cmd TEXT;
  DECLARE status INT;
  SET cmd = concat(' ', (SELECT value FROM swampd_test_setting WHERE name = 'kill_run_cmd'),
                   ' --execution_record_uuid ', swampd_quote(execution_record_uuid_in),
                   ' --hard ', ifnull(swampd_quote(hard_kill_flag_in), char(39, 39)));
  INSERT INTO sys_exec_cmd_log (cmd, caller) VALUES (cmd, 'kill_assessment_run');
  SET status = sys_exec(cmd);
  IF status <> 0 THEN
    SET return_string = 'ERROR';
  ELSE
    SET return_string = 'SUCCESS';
  END IF;
END$$

DELIMITER ;
